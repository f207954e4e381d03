namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// The cluster's PostgreSQL schema as an ordered list of migrations, applied by
/// <see cref="PostgresDatabase.MigrateAsync"/> and recorded in <c>schema_migrations</c>. Append new migrations at the
/// end; never edit or reorder one that has shipped.
/// </summary>
/// <remarks>
/// Bodies the database may be asked about (messages, runs) are <c>jsonb</c>; event bodies are
/// <c>json</c>, which keeps the text exactly as serialized, so a replayed event is byte for byte the event that went
/// out live (and keeps its <c>type</c> discriminator first, where System.Text.Json looks for it). Times are
/// <c>timestamptz</c>. From version 6 on, the schema also holds what Orleans' ADO.NET providers need (membership,
/// grain state, reminders and the <c>orleansquery</c> table of their statements); version 9 drops the tables of the
/// runtime Orleans replaced.
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

        // Orleans' ADO.NET providers (Invariant "Npgsql") read their statements from orleansquery when they start,
        // by key, and bind their parameters by name (@DeploymentId, …); they read results by column name. Table,
        // column and parameter names, result columns and the meaning of each key are the providers' contract; the
        // statements are ours. Every name is unquoted, so it resolves through search_path like our own tables.
        // A statement that must change later is replaced by a new migration (UPDATE orleansquery …), never here.
        //
        // Membership: one version row per cluster (deploymentid = the ClusterId) and one row per silo incarnation
        // (address, port, generation). Every insert or update of a silo row bumps the version row in the same
        // transaction, and only if the caller passes the version it read: the membership protocol's optimistic
        // concurrency. Status is Orleans' SiloStatus (3 active, 6 dead). SuspectTimes is Orleans' own text
        // ("silo,time|silo,time"). Times are timestamptz, written by the silos.
        new(6, "orleans: query table, cluster membership", """
            CREATE TABLE orleansquery (
                querykey  varchar(64) NOT NULL PRIMARY KEY,
                querytext text        NOT NULL
            );

            CREATE TABLE orleansmembershipversiontable (
                deploymentid text        NOT NULL PRIMARY KEY,
                timestamp    timestamptz NOT NULL DEFAULT now(),
                version      integer     NOT NULL DEFAULT 0
            );

            CREATE TABLE orleansmembershiptable (
                deploymentid text        NOT NULL REFERENCES orleansmembershipversiontable (deploymentid) ON DELETE CASCADE,
                address      text        NOT NULL,
                port         integer     NOT NULL,
                generation   integer     NOT NULL,
                siloname     text        NOT NULL,
                hostname     text        NOT NULL,
                status       integer     NOT NULL,
                proxyport    integer     NOT NULL,
                suspecttimes text,
                starttime    timestamptz NOT NULL,
                iamalivetime timestamptz NOT NULL,
                PRIMARY KEY (deploymentid, address, port, generation)
            );

            -- Both functions first lock the cluster's version row, and only if it still holds the version the caller
            -- read: a concurrent writer that got there first has changed it, and READ COMMITTED re-reads the locked
            -- row, so the second writer finds nothing and changes nothing. They answer whether they wrote.
            CREATE FUNCTION orleans_membership_insert(
                p_deployment_id text, p_address text, p_port integer, p_generation integer, p_silo_name text,
                p_host_name text, p_status integer, p_proxy_port integer, p_start_time timestamptz,
                p_i_am_alive_time timestamptz, p_version integer)
            RETURNS boolean LANGUAGE plpgsql AS $fn$
            BEGIN
                PERFORM 1 FROM orleansmembershipversiontable
                WHERE deploymentid = p_deployment_id AND version = p_version
                FOR UPDATE;
                IF NOT FOUND THEN
                    RETURN false;
                END IF;

                INSERT INTO orleansmembershiptable
                    (deploymentid, address, port, generation, siloname, hostname, status, proxyport, starttime, iamalivetime)
                VALUES
                    (p_deployment_id, p_address, p_port, p_generation, p_silo_name, p_host_name, p_status, p_proxy_port,
                     p_start_time, p_i_am_alive_time)
                ON CONFLICT (deploymentid, address, port, generation) DO NOTHING;
                IF NOT FOUND THEN
                    RETURN false; -- that incarnation is already listed; the version stays
                END IF;

                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = p_deployment_id;
                RETURN true;
            END;
            $fn$;

            CREATE FUNCTION orleans_membership_update(
                p_deployment_id text, p_address text, p_port integer, p_generation integer, p_status integer,
                p_suspect_times text, p_i_am_alive_time timestamptz, p_version integer)
            RETURNS boolean LANGUAGE plpgsql AS $fn$
            BEGIN
                PERFORM 1 FROM orleansmembershipversiontable
                WHERE deploymentid = p_deployment_id AND version = p_version
                FOR UPDATE;
                IF NOT FOUND THEN
                    RETURN false;
                END IF;

                UPDATE orleansmembershiptable
                SET status = p_status, suspecttimes = p_suspect_times, iamalivetime = p_i_am_alive_time
                WHERE deploymentid = p_deployment_id AND address = p_address AND port = p_port AND generation = p_generation;
                IF NOT FOUND THEN
                    RETURN false;
                END IF;

                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = p_deployment_id;
                RETURN true;
            END;
            $fn$;

            INSERT INTO orleansquery (querykey, querytext) VALUES
            ('InsertMembershipVersionKey', $q$
                WITH created AS (
                    INSERT INTO orleansmembershipversiontable (deploymentid) VALUES (@DeploymentId)
                    ON CONFLICT (deploymentid) DO NOTHING
                    RETURNING 1
                )
                SELECT EXISTS (SELECT FROM created);
            $q$),
            ('InsertMembershipKey', $q$
                SELECT orleans_membership_insert(@DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName,
                    @Status, @ProxyPort, @StartTime, @IAmAliveTime, @Version);
            $q$),
            ('UpdateMembershipKey', $q$
                SELECT orleans_membership_update(@DeploymentId, @Address, @Port, @Generation, @Status, @SuspectTimes,
                    @IAmAliveTime, @Version);
            $q$),
            -- A heartbeat: no version bump (the protocol says so), nothing to answer.
            ('UpdateIAmAlivetimeKey', $q$
                UPDATE orleansmembershiptable SET iamalivetime = @IAmAliveTime
                WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation;
            $q$),
            -- The version row always comes back, with the silo's columns null when it is not listed.
            ('MembershipReadRowKey', $q$
                SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                       m.suspecttimes, m.starttime, m.iamalivetime, v.version
                FROM orleansmembershipversiontable AS v
                LEFT JOIN orleansmembershiptable AS m
                       ON m.deploymentid = v.deploymentid
                      AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
                WHERE v.deploymentid = @DeploymentId;
            $q$),
            ('MembershipReadAllKey', $q$
                SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                       m.suspecttimes, m.starttime, m.iamalivetime, v.version
                FROM orleansmembershipversiontable AS v
                LEFT JOIN orleansmembershiptable AS m ON m.deploymentid = v.deploymentid
                WHERE v.deploymentid = @DeploymentId;
            $q$),
            -- The silo rows go with their version row (ON DELETE CASCADE).
            ('DeleteMembershipTableEntriesKey', $q$
                DELETE FROM orleansmembershipversiontable WHERE deploymentid = @DeploymentId;
            $q$),
            ('GatewaysQueryKey', $q$
                SELECT address, proxyport, generation
                FROM orleansmembershiptable
                WHERE deploymentid = @DeploymentId AND status = @Status AND proxyport > 0;
            $q$),
            -- Rows of dead silos not heard of since the cut-off. Orleans uses the next key instead when it exists.
            ('CleanupDefunctSiloEntriesKey', $q$
                DELETE FROM orleansmembershiptable
                WHERE deploymentid = @DeploymentId AND status = 6 AND iamalivetime < @IAmAliveTime;
            $q$),
            -- One dead silo's row, only if it is still as Orleans read it (no suspicion or heartbeat since).
            -- Orleans sends no suspect times for a row whose text was empty, so empty and null count as equal.
            ('CleanupDefunctSiloEntryKey', $q$
                DELETE FROM orleansmembershiptable
                WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
                  AND status = 6 AND starttime = @StartTime AND iamalivetime = @IAmAliveTime
                  AND coalesce(suspecttimes, '') = coalesce(@SuspectTimes, '');
            $q$);
            """),

        // Grain state (AddAdoNetGrainStorage): one row per (service, grain type, grain id). The providers' ETag is
        // the version column: a write with the version it read bumps it, a first write (no ETag) inserts version
        // 1, and anything else changes nothing and answers no row, which the provider raises as
        // InconsistentStateException. The unique key (NULLS NOT DISTINCT: PostgreSQL 15 or later) makes two
        // concurrent first writes of one grain collide instead of both inserting. Its text columns share one
        // B-tree entry, so grain type plus key must stay under about 2,500 bytes.
        new(7, "orleans: grain storage", """
            CREATE TABLE orleansstorage (
                grainidhash            integer     NOT NULL,
                grainidn0              bigint      NOT NULL,
                grainidn1              bigint      NOT NULL,
                graintypehash          integer     NOT NULL,
                graintypestring        text        NOT NULL,
                grainidextensionstring text,
                serviceid              text        NOT NULL,
                payloadbinary          bytea,
                modifiedon             timestamptz NOT NULL,
                version                integer     NOT NULL,
                CONSTRAINT orleansstorage_grain UNIQUE NULLS NOT DISTINCT
                    (serviceid, grainidhash, graintypehash, grainidn0, grainidn1, graintypestring, grainidextensionstring)
            );

            INSERT INTO orleansquery (querykey, querytext) VALUES
            ('ReadFromStorageKey', $q$
                SELECT payloadbinary, version
                FROM orleansstorage
                WHERE serviceid = @ServiceId AND grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
                  AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
                  AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString;
            $q$),
            ('WriteToStorageKey', $q$
                WITH updated AS (
                    UPDATE orleansstorage
                    SET payloadbinary = @PayloadBinary, version = version + 1, modifiedon = now()
                    WHERE @GrainStateVersion IS NOT NULL AND version = @GrainStateVersion
                      AND serviceid = @ServiceId AND grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
                      AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
                      AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
                    RETURNING version
                ), inserted AS (
                    INSERT INTO orleansstorage (grainidhash, grainidn0, grainidn1, graintypehash, graintypestring,
                        grainidextensionstring, serviceid, payloadbinary, modifiedon, version)
                    SELECT @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString,
                        @GrainIdExtensionString, @ServiceId, @PayloadBinary, now(), 1
                    WHERE @GrainStateVersion IS NULL
                    ON CONFLICT ON CONSTRAINT orleansstorage_grain DO NOTHING
                    RETURNING version
                )
                SELECT version AS newgrainstateversion FROM updated
                UNION ALL
                SELECT version FROM inserted;
            $q$),
            -- ClearStateAsync keeps the row, without a payload, at the next version.
            ('ClearStorageKey', $q$
                UPDATE orleansstorage
                SET payloadbinary = NULL, version = version + 1, modifiedon = now()
                WHERE version = @GrainStateVersion
                  AND serviceid = @ServiceId AND grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
                  AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
                  AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
                RETURNING version AS newgrainstateversion;
            $q$),
            -- With DeleteStateOnClear the row goes; the answer must differ from the ETag sent for the provider to
            -- see success, hence the version after the deleted one.
            ('DeleteStorageKey', $q$
                DELETE FROM orleansstorage
                WHERE version = @GrainStateVersion
                  AND serviceid = @ServiceId AND grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
                  AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
                  AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
                RETURNING version + 1 AS newgrainstateversion;
            $q$);
            """),

        // Reminders (UseAdoNetReminderService): one row per (service, grain, reminder name); the ETag is the
        // version. grainhash is Orleans' uniform hash of the grain id as a signed integer: the silos read the
        // reminders of their ring range by it, as (begin, end] or, for a range that wraps, outside (end, begin].
        new(8, "orleans: reminders", """
            CREATE TABLE orleansreminderstable (
                serviceid    text        NOT NULL,
                grainid      text        NOT NULL,
                remindername text        NOT NULL,
                starttime    timestamptz NOT NULL,
                period       bigint      NOT NULL,
                grainhash    integer     NOT NULL,
                version      integer     NOT NULL,
                PRIMARY KEY (serviceid, grainid, remindername)
            );

            CREATE INDEX orleansreminderstable_grainhash ON orleansreminderstable (serviceid, grainhash);

            INSERT INTO orleansquery (querykey, querytext) VALUES
            ('ReadReminderRowsKey', $q$
                SELECT grainid, remindername, starttime, period, version
                FROM orleansreminderstable
                WHERE serviceid = @ServiceId AND grainid = @GrainId;
            $q$),
            ('ReadReminderRowKey', $q$
                SELECT grainid, remindername, starttime, period, version
                FROM orleansreminderstable
                WHERE serviceid = @ServiceId AND grainid = @GrainId AND remindername = @ReminderName;
            $q$),
            ('ReadRangeRows1Key', $q$
                SELECT grainid, remindername, starttime, period, version
                FROM orleansreminderstable
                WHERE serviceid = @ServiceId AND grainhash > @BeginHash AND grainhash <= @EndHash;
            $q$),
            ('ReadRangeRows2Key', $q$
                SELECT grainid, remindername, starttime, period, version
                FROM orleansreminderstable
                WHERE serviceid = @ServiceId AND (grainhash > @BeginHash OR grainhash <= @EndHash);
            $q$),
            ('UpsertReminderRowKey', $q$
                INSERT INTO orleansreminderstable (serviceid, grainid, remindername, starttime, period, grainhash, version)
                VALUES (@ServiceId, @GrainId, @ReminderName, @StartTime, @Period, @GrainHash, 1)
                ON CONFLICT (serviceid, grainid, remindername) DO UPDATE
                SET starttime = excluded.starttime, period = excluded.period, grainhash = excluded.grainhash,
                    version = orleansreminderstable.version + 1
                RETURNING version;
            $q$),
            ('DeleteReminderRowKey', $q$
                WITH removed AS (
                    DELETE FROM orleansreminderstable
                    WHERE serviceid = @ServiceId AND grainid = @GrainId AND remindername = @ReminderName
                      AND version = @Version
                    RETURNING 1
                )
                SELECT EXISTS (SELECT FROM removed);
            $q$),
            ('DeleteReminderRowsKey', $q$
                DELETE FROM orleansreminderstable WHERE serviceid = @ServiceId;
            $q$);
            """),

        // Orleans replaces the home-made runtime: its grain storage holds the thread state, its membership the
        // silos, its grain directory the leases, and grains take the place of the run queue and the agents table.
        // The history (messages, runs) and the event log stay, now keyed by thread id alone.
        new(9, "drop the home-made runtime's tables", """
            ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey;
            ALTER TABLE runs DROP CONSTRAINT runs_thread_id_fkey;
            DROP TABLE thread_leases, silos, run_requests, agents, threads;
            """),

        // A thread grain asks, when it activates, for its runs still marked running (lost with a crashed
        // activation). Only those rows are in this index, so the question stays cheap however many runs a thread
        // has had. Queries must spell the predicate the same way to use it.
        new(10, "index of running runs", """
            CREATE INDEX runs_running ON runs (thread_id) WHERE (body ->> 'status') = 'running';
            """),

        // Listings: grain state is not queryable, so the thread grains keep a row per thread here. A listing reads it
        // newest first (thread_index_recent; with an owner, thread_index_owner_recent), a metadata filter is a
        // containment test (the GIN index). The events' creation time is indexed for the retention's compaction.
        new(11, "thread index, events by age", """
            CREATE TABLE thread_index (
                id            text        NOT NULL PRIMARY KEY,
                owner         text,
                created_at    timestamptz NOT NULL,
                updated_at    timestamptz NOT NULL,
                metadata      jsonb       NOT NULL,
                title         text,
                preview       text,
                message_count integer     NOT NULL
            );

            CREATE INDEX thread_index_recent ON thread_index (updated_at DESC, id DESC);
            CREATE INDEX thread_index_owner_recent ON thread_index (owner, updated_at DESC, id DESC);
            CREATE INDEX thread_index_metadata ON thread_index USING gin (metadata jsonb_path_ops);
            CREATE INDEX events_created_at ON events (created_at);
            """),
    ];

    /// <summary>The schema version the code expects: the highest migration's version.</summary>
    public static int LatestVersion => Migrations.Count;
}

/// <summary>One migration: moves the schema from <c>Version - 1</c> to <c>Version</c>.</summary>
internal sealed record PostgresMigration(int Version, string Description, string Sql);
