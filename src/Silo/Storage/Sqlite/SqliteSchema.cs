namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// The schema of the silo's SQLite database as an ordered list of migrations. Migration <c>n</c> (1-based) moves
/// the database from <c>PRAGMA user_version</c> <c>n - 1</c> to <c>n</c>. Append new migrations at the end; never
/// edit or reorder one that has shipped.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>The migrations, in order. JSON columns hold <c>ContractJson</c> text; times are UTC ISO-8601 text.</summary>
    public static IReadOnlyList<string> Migrations { get; } =
    [
        // 1: thread store. A thread's state is one row; messages and runs are rows of their own.
        """
        CREATE TABLE threads (
            id         TEXT    NOT NULL PRIMARY KEY,
            version    INTEGER NOT NULL,
            state      TEXT    NOT NULL,
            created_at TEXT    NOT NULL,
            updated_at TEXT    NOT NULL
        );

        CREATE TABLE messages (
            thread_id TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
            ordinal   INTEGER NOT NULL,
            id        TEXT    NOT NULL,
            body      TEXT    NOT NULL,
            PRIMARY KEY (thread_id, ordinal),
            UNIQUE (thread_id, id)
        );

        CREATE TABLE runs (
            thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
            id        TEXT NOT NULL,
            body      TEXT NOT NULL,
            PRIMARY KEY (thread_id, id)
        );
        """,

        // 2: event log. Independent of threads: the stream may persist events before or without the thread row.
        """
        CREATE TABLE events (
            thread_id  TEXT    NOT NULL,
            sequence   INTEGER NOT NULL,
            type       TEXT    NOT NULL,
            body       TEXT    NOT NULL,
            created_at TEXT    NOT NULL,
            PRIMARY KEY (thread_id, sequence)
        );
        """,
    ];

    /// <summary>The schema version the code expects: the number of migrations.</summary>
    public static int LatestVersion => Migrations.Count;
}
