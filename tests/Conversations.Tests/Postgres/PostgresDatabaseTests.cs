using System.Globalization;
using Conversations.Silo.Storage.Postgres;
using Npgsql;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Postgres;

public sealed class PostgresDatabaseTests : PostgresTestBase
{
    private static readonly string[] Tables =
    [
        "events", "messages", "orleansmembershiptable", "orleansmembershipversiontable", "orleansquery",
        "orleansreminderstable", "orleansstorage", "runs", "schema_migrations", "thread_index",
    ];

    /// <summary>Every statement key Orleans 10.4's ADO.NET clustering, persistence and reminder providers look up.</summary>
    private static readonly string[] OrleansQueryKeys =
    [
        "CleanupDefunctSiloEntriesKey", "CleanupDefunctSiloEntryKey", "ClearStorageKey", "DeleteMembershipTableEntriesKey",
        "DeleteReminderRowKey", "DeleteReminderRowsKey", "DeleteStorageKey", "GatewaysQueryKey", "InsertMembershipKey",
        "InsertMembershipVersionKey", "MembershipReadAllKey", "MembershipReadRowKey", "ReadFromStorageKey", "ReadRangeRows1Key",
        "ReadRangeRows2Key", "ReadReminderRowKey", "ReadReminderRowsKey", "UpdateIAmAlivetimeKey", "UpdateMembershipKey",
        "UpsertReminderRowKey", "WriteToStorageKey",
    ];

    [Fact]
    public async Task Migrate_creates_the_schema_its_tables_and_records_every_migration()
    {
        var database = Fixture.Open();
        Assert.Empty(await TablesAsync(database));
        Assert.Equal(0, await database.GetSchemaVersionAsync(Ct));

        await database.MigrateAsync(Ct);

        Assert.Equal(11, PostgresDatabase.LatestSchemaVersion);
        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Equal(Tables, await TablesAsync(database));
        Assert.Equal(
            Enumerable.Range(1, PostgresDatabase.LatestSchemaVersion),
            await ListAsync<int>(database, "SELECT version FROM schema_migrations ORDER BY version;"));
        Assert.Equal(OrleansQueryKeys, await ListAsync<string>(database, "SELECT querykey::text FROM orleansquery ORDER BY querykey COLLATE \"C\";"));
    }

    [Fact]
    public async Task Every_object_lives_in_the_schema_of_the_search_path()
    {
        var database = await Fixture.OpenMigratedAsync();

        Assert.Equal(
            ["orleans_membership_insert", "orleans_membership_update"],
            await ListAsync<string>(database, $"SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '{database.Schema}' ORDER BY 1;"));
        Assert.Empty(await ListAsync<string>(database, "SELECT querykey::text FROM orleansquery WHERE querytext ILIKE '%public.%';"));
        Assert.Empty(await ListAsync<string>(
            database,
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname LIKE 'orleans%';"));
    }

    [Fact]
    public async Task Migrating_again_is_a_no_op_that_keeps_the_data()
    {
        var database = await Fixture.OpenMigratedAsync();
        var history = new PostgresThreadHistory(database);
        await history.AppendAsync("thr_1", [UserMessage(1)], [Run("thr_1")], Ct);
        var applied = await ListAsync<DateTime>(database, "SELECT applied_at FROM schema_migrations ORDER BY version;");

        await database.MigrateAsync(Ct);
        await (await Fixture.OpenMigratedAsync()).MigrateAsync(Ct);

        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Equal(applied, await ListAsync<DateTime>(database, "SELECT applied_at FROM schema_migrations ORDER BY version;"));
        Assert.Single(await history.ReadMessagesAsync("thr_1", 0, 10, Ct));
        Assert.NotNull(await history.ReadRunAsync("thr_1", "run_1", Ct));
        Assert.Equal(OrleansQueryKeys.Length, await ScalarAsync<long>(database, "SELECT count(*) FROM orleansquery;"));
    }

    [Fact]
    public async Task Five_nodes_migrating_at_once_apply_each_migration_once()
    {
        var databases = Enumerable.Range(0, 5).Select(_ => Fixture.Open()).ToArray();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var migrations = databases.Select(d => Task.Run(async () =>
        {
            await gate.Task;
            await d.MigrateAsync(Ct);
        }, Ct)).ToArray();
        gate.SetResult();
        await Task.WhenAll(migrations); // without the lock: "relation already exists" or a duplicate schema/version key

        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await databases[0].GetSchemaVersionAsync(Ct));
        Assert.Equal(Tables, await TablesAsync(databases[^1]));
        Assert.Equal(
            Enumerable.Range(1, PostgresDatabase.LatestSchemaVersion),
            await ListAsync<int>(databases[2], "SELECT version FROM schema_migrations ORDER BY version;"));
        Assert.Equal(OrleansQueryKeys.Length, await ScalarAsync<long>(databases[3], "SELECT count(*) FROM orleansquery;"));
    }

    [Fact]
    public async Task Upgrading_a_version_5_database_drops_the_old_runtime_and_keeps_messages_runs_and_events()
    {
        var database = Fixture.Open();
        await ApplyFirstMigrationsAsync(database, 5);
        await ExecuteAsync(database, """
            INSERT INTO threads (id, version, state, created_at, updated_at) VALUES ('thr_1', 3, '{}', now(), now());
            INSERT INTO messages (thread_id, ordinal, id, body) VALUES
                ('thr_1', 1, 'msg_1', '{"id":"msg_1","ordinal":1,"role":"user","content":"Hi","createdAt":"2025-03-14T09:26:53+02:00","status":"completed"}');
            INSERT INTO runs (thread_id, id, body) VALUES
                ('thr_1', 'run_1', '{"id":"run_1","threadId":"thr_1","agent":"default","userMessageId":"msg_1","startedAt":"2025-03-14T09:26:54+02:00","status":"running","startSequence":1}');
            INSERT INTO events (thread_id, sequence, type, body, created_at) VALUES
                ('thr_1', 1, 'text.delta', '{"type":"text.delta","sequence":1,"threadId":"thr_1","runId":"run_1","createdAt":"2025-03-14T09:26:55+02:00","messageId":"msg_2","text":"x"}', now());
            INSERT INTO agents (name, definition, updated_at) VALUES ('default', '{}', now());
            INSERT INTO silos (silo_id, address, started_at, heartbeat_at, status) VALUES ('silo_1', 'http://127.0.0.1:1', now(), now(), 'active');
            INSERT INTO thread_leases (thread_id, silo_id, token, acquired_at, expires_at) VALUES ('thr_1', 'silo_1', 1, now(), now());
            INSERT INTO run_requests (run_id, thread_id, payload, status) VALUES ('run_1', 'thr_1', '{}', 'queued');
            """);

        await database.MigrateAsync(Ct);

        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Equal(Tables, await TablesAsync(database));
        var history = new PostgresThreadHistory(database);
        var message = Assert.Single(await history.ReadMessagesAsync("thr_1", 0, 10, Ct));
        Assert.Equal(("msg_1", "Hi"), (message.Id, message.Content));
        Assert.Equal("run_1", Assert.Single(await history.ReadUnfinishedRunsAsync("thr_1", Ct)).Id);
        Assert.Equal(1, await new PostgresEventLog(database).GetLastSequenceAsync("thr_1", Ct));
        // Without the foreign keys, history rows need no thread row.
        await history.AppendAsync("thr_new", [UserMessage(1)], [Run("thr_new")], Ct);
        Assert.Equal(1, await history.GetLastOrdinalAsync("thr_new", Ct));
    }

    [Fact]
    public async Task Migrate_refuses_a_database_newer_than_the_code()
    {
        var database = await Fixture.OpenMigratedAsync();
        var newer = PostgresDatabase.LatestSchemaVersion + 1;
        await using (var command = database.DataSource.CreateCommand("INSERT INTO schema_migrations (version, description) VALUES ($1, 'from the future');"))
        {
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = newer });
            await command.ExecuteNonQueryAsync(Ct);
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => database.MigrateAsync(Ct));

        Assert.Contains(newer.ToString(CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Equal(newer, await database.GetSchemaVersionAsync(Ct));
    }

    [Fact]
    public async Task Schemas_keep_their_data_apart()
    {
        await using var other = await PostgresFixture.CreateAsync();
        var mine = new PostgresThreadHistory(await Fixture.OpenMigratedAsync());
        var theirs = new PostgresThreadHistory(await other.OpenMigratedAsync());

        await mine.AppendAsync("thr_1", [UserMessage(1)], [], Ct);

        Assert.Equal(1, await mine.GetLastOrdinalAsync("thr_1", Ct));
        Assert.Equal(0, await theirs.GetLastOrdinalAsync("thr_1", Ct));
        await theirs.AppendAsync("thr_1", [UserMessage(1)], [], Ct); // no conflict: another schema
    }

    [Fact]
    public void The_connection_string_carries_the_schema_as_search_path_and_the_pool_bound()
    {
        using var bounded = new PostgresDatabase(PostgresFixture.DefaultConnectionString, "conv_test", maxPoolSize: 7);
        using var explicitPool = new PostgresDatabase(PostgresFixture.DefaultConnectionString + ";Maximum Pool Size=3", null, maxPoolSize: 7);
        using var compactKeyword = new PostgresDatabase(PostgresFixture.DefaultConnectionString + ";maxpoolsize=4", null, maxPoolSize: 7);
        using var unbounded = new PostgresDatabase(PostgresFixture.DefaultConnectionString);

        var builder = new NpgsqlConnectionStringBuilder(bounded.ConnectionString);
        Assert.Equal(("conv_test", 7), (builder.SearchPath, builder.MaxPoolSize));
        Assert.Equal(3, new NpgsqlConnectionStringBuilder(explicitPool.ConnectionString).MaxPoolSize);
        Assert.Equal(4, new NpgsqlConnectionStringBuilder(compactKeyword.ConnectionString).MaxPoolSize);
        Assert.Null(new NpgsqlConnectionStringBuilder(unbounded.ConnectionString).SearchPath);
        Assert.Equal(100, new NpgsqlConnectionStringBuilder(unbounded.ConnectionString).MaxPoolSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PostgresDatabase(PostgresFixture.DefaultConnectionString, null, maxPoolSize: 0));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Upper")]
    [InlineData("1starts_with_a_digit")]
    [InlineData("semi;colon")]
    [InlineData("quote\"d")]
    public void Constructor_rejects_an_unusable_schema_name(string schema)
    {
        Assert.ThrowsAny<ArgumentException>(() => new PostgresDatabase(PostgresFixture.DefaultConnectionString, schema));
    }

    [Fact]
    public void Constructor_rejects_an_empty_connection_string()
    {
        Assert.ThrowsAny<ArgumentException>(() => new PostgresDatabase(" "));
    }

    /// <summary>Brings <paramref name="database"/> to <paramref name="version"/> the way a node of that release did.</summary>
    private static async Task ApplyFirstMigrationsAsync(PostgresDatabase database, int version)
    {
        await ExecuteAsync(database, $"CREATE SCHEMA \"{database.Schema}\";");
        await ExecuteAsync(database, """
            CREATE TABLE schema_migrations (
                version     integer     NOT NULL PRIMARY KEY,
                description text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            );
            """);
        foreach (var migration in PostgresSchema.Migrations.Where(m => m.Version <= version))
        {
            await ExecuteAsync(database, migration.Sql);
            await ExecuteAsync(database, $"INSERT INTO schema_migrations (version, description) VALUES ({migration.Version}, 'old');");
        }
    }

    private static async Task<string[]> TablesAsync(PostgresDatabase database)
    {
        await using var command = database.DataSource.CreateCommand(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name;");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = database.Schema! });
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var names = new List<string>();
        while (await reader.ReadAsync(Ct))
        {
            names.Add(reader.GetString(0));
        }

        return [.. names];
    }
}
