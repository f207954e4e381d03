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

        // 3: Orleans. Grain state (the thread's compact state, the agent catalog, …) goes through our grain storage
        // into grain_state, keyed by state name and grain id, with an ETag; threads' state rows move there. Messages
        // and runs lose their foreign key to threads (which goes) and stay append-only rows of the history.
        """
        CREATE TABLE grain_state (
            state_name TEXT NOT NULL,
            grain_type TEXT NOT NULL,
            grain_key  TEXT NOT NULL,
            etag       TEXT NOT NULL,
            payload    TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (state_name, grain_type, grain_key)
        );

        INSERT INTO grain_state (state_name, grain_type, grain_key, etag, payload, updated_at)
        SELECT 'thread', 'thread', id, CAST(version AS TEXT), state, updated_at FROM threads;

        CREATE TABLE messages_v3 (
            thread_id TEXT    NOT NULL,
            ordinal   INTEGER NOT NULL,
            id        TEXT    NOT NULL,
            body      TEXT    NOT NULL,
            PRIMARY KEY (thread_id, ordinal),
            UNIQUE (thread_id, id)
        );
        INSERT INTO messages_v3 (thread_id, ordinal, id, body) SELECT thread_id, ordinal, id, body FROM messages;
        DROP TABLE messages;
        ALTER TABLE messages_v3 RENAME TO messages;

        CREATE TABLE runs_v3 (
            thread_id TEXT NOT NULL,
            id        TEXT NOT NULL,
            status    TEXT NOT NULL,
            body      TEXT NOT NULL,
            PRIMARY KEY (thread_id, id)
        );
        INSERT INTO runs_v3 (thread_id, id, status, body)
        SELECT thread_id, id, COALESCE(json_extract(body, '$.status'), 'running'), body FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_v3 RENAME TO runs;
        CREATE INDEX runs_unfinished ON runs (thread_id) WHERE status = 'running';

        DROP TABLE threads;
        """,

        // 4: the thread index (listings: grain state is not queryable; the thread grains keep these rows), and the
        // events' creation time indexed for the retention's compaction.
        """
        CREATE TABLE thread_index (
            id            TEXT    NOT NULL PRIMARY KEY,
            owner         TEXT,
            created_at    TEXT    NOT NULL,
            updated_at    TEXT    NOT NULL,
            metadata      TEXT    NOT NULL,
            title         TEXT,
            preview       TEXT,
            message_count INTEGER NOT NULL
        );
        CREATE INDEX thread_index_recent ON thread_index (updated_at DESC, id DESC);
        CREATE INDEX thread_index_owner_recent ON thread_index (owner, updated_at DESC, id DESC);
        CREATE INDEX events_created_at ON events (created_at);
        """,
    ];

    /// <summary>The schema version the code expects: the number of migrations.</summary>
    public static int LatestVersion => Migrations.Count;
}
