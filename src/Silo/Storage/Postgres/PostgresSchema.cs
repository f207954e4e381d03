namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// The cluster's PostgreSQL schema as an ordered list of migrations, applied by
/// <see cref="PostgresDatabase.MigrateAsync"/> and recorded in <c>schema_migrations</c>. Append new migrations at the
/// end; never edit or reorder one that has shipped.
/// </summary>
/// <remarks>
/// Bodies the database may be asked about (thread state, messages, runs, agents) are <c>jsonb</c>; event bodies are
/// <c>json</c>, which keeps the text exactly as serialized, so a replayed event is byte for byte the event that went
/// out live (and keeps its <c>type</c> discriminator first, where System.Text.Json looks for it). Times are
/// <c>timestamptz</c>; leases and heartbeats are stamped with the database's <c>now()</c>, never a silo's clock.
/// </remarks>
internal static class PostgresSchema
{
    public static IReadOnlyList<PostgresMigration> Migrations { get; } =
    [
        new(1, "thread store: threads, messages, runs", """
            CREATE TABLE threads (
                id         text        NOT NULL PRIMARY KEY,
                version    bigint      NOT NULL,
                state      jsonb       NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            );

            CREATE TABLE messages (
                thread_id text    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                ordinal   integer NOT NULL,
                id        text    NOT NULL,
                body      jsonb   NOT NULL,
                PRIMARY KEY (thread_id, ordinal),
                UNIQUE (thread_id, id)
            );

            CREATE TABLE runs (
                thread_id text  NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                id        text  NOT NULL,
                body      jsonb NOT NULL,
                PRIMARY KEY (thread_id, id)
            );
            """),

        // Independent of threads: the stream may persist events before or without the thread row.
        new(2, "event log", """
            CREATE TABLE events (
                thread_id  text        NOT NULL,
                sequence   bigint      NOT NULL,
                type       text        NOT NULL,
                body       json        NOT NULL,
                created_at timestamptz NOT NULL,
                PRIMARY KEY (thread_id, sequence)
            );
            """),

        new(3, "agents", """
            CREATE TABLE agents (
                name       text        NOT NULL PRIMARY KEY,
                definition jsonb       NOT NULL,
                updated_at timestamptz NOT NULL
            );
            """),

        // Rows of thread_leases are never deleted: a released or expired lease keeps its token, so the next
        // holder's token is always higher than any handed out before. No foreign key: a lease is taken before the
        // thread it guards is created.
        new(4, "silos and thread leases", """
            CREATE TABLE silos (
                silo_id      text        NOT NULL PRIMARY KEY,
                address      text        NOT NULL,
                started_at   timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL,
                status       text        NOT NULL CHECK (status IN ('active', 'stopped'))
            );

            CREATE TABLE thread_leases (
                thread_id   text        NOT NULL PRIMARY KEY,
                silo_id     text        NOT NULL,
                token       bigint      NOT NULL CHECK (token > 0),
                acquired_at timestamptz NOT NULL,
                expires_at  timestamptz NOT NULL
            );

            CREATE INDEX thread_leases_silo_id ON thread_leases (silo_id);
            """),

        // The run queue (Cluster/RunQueue): one row per SendMessage handed to the silos, keyed by its run id.
        // run_requests_queue serves the queue scan; run_requests_pending serves "is an earlier request of this
        // thread still pending", which keeps a thread's requests in enqueue order across silos.
        new(5, "run queue", """
            CREATE TABLE run_requests (
                run_id      text        NOT NULL PRIMARY KEY,
                thread_id   text        NOT NULL,
                payload     jsonb       NOT NULL,
                status      text        NOT NULL CHECK (status IN ('queued', 'taken', 'done', 'cancelled')),
                result      jsonb,
                taken_by    text,
                attempts    integer     NOT NULL DEFAULT 0,
                enqueued_at timestamptz NOT NULL DEFAULT now(),
                taken_at    timestamptz,
                done_at     timestamptz
            );

            CREATE INDEX run_requests_queue ON run_requests (status, enqueued_at);
            CREATE INDEX run_requests_pending ON run_requests (thread_id, enqueued_at) WHERE status IN ('queued', 'taken');
            """),
    ];

    /// <summary>The schema version the code expects: the highest migration's version.</summary>
    public static int LatestVersion => Migrations.Count;
}

/// <summary>One migration: moves the schema from <c>Version - 1</c> to <c>Version</c>.</summary>
internal sealed record PostgresMigration(int Version, string Description, string Sql);
