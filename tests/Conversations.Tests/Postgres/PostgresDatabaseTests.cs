using System.Globalization;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Silo.Storage.Postgres;
using Npgsql;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Postgres;

public sealed class PostgresDatabaseTests : IAsyncLifetime
{
    private static readonly string[] Tables = ["agents", "events", "messages", "run_requests", "runs", "schema_migrations", "silos", "thread_leases", "threads"];

    private PostgresFixture? _fixture;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private PostgresFixture Fixture => _fixture ?? throw new InvalidOperationException("Not initialized.");

    public async ValueTask InitializeAsync() => _fixture = await PostgresFixture.CreateAsync();

    public async ValueTask DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }
    }

    [Fact]
    public async Task Migrate_creates_the_schema_its_tables_and_records_every_migration()
    {
        var database = Fixture.Open();
        Assert.Empty(await TablesAsync(database));
        Assert.Equal(0, await database.GetSchemaVersionAsync(Ct));

        await database.MigrateAsync(Ct);

        Assert.True(PostgresDatabase.LatestSchemaVersion >= 5);
        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Equal(Tables, await TablesAsync(database));
        Assert.Equal(
            Enumerable.Range(1, PostgresDatabase.LatestSchemaVersion),
            await ListAsync<int>(database, "SELECT version FROM schema_migrations ORDER BY version;"));
    }

    [Fact]
    public async Task Migrating_again_is_a_no_op_that_keeps_the_data()
    {
        var database = await Fixture.OpenMigratedAsync();
        var store = new PostgresThreadStore(database);
        await store.WriteAsync(new ThreadWrite(State("thr_1", 1), 0) { Messages = [UserMessage(1)] }, Ct);
        var applied = await ListAsync<DateTime>(database, "SELECT applied_at FROM schema_migrations ORDER BY version;");

        await database.MigrateAsync(Ct);
        await (await Fixture.OpenMigratedAsync()).MigrateAsync(Ct);

        Assert.Equal(PostgresDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Equal(applied, await ListAsync<DateTime>(database, "SELECT applied_at FROM schema_migrations ORDER BY version;"));
        Assert.Equal(1, (await store.ReadAsync("thr_1", Ct))!.Version);
        Assert.Single(await store.ReadMessagesAsync("thr_1", 0, 10, Ct));
    }

    [Fact]
    public async Task Concurrent_migrations_from_several_instances_apply_each_migration_once()
    {
        var databases = Enumerable.Range(0, 6).Select(_ => Fixture.Open()).ToArray();
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
        var mine = new PostgresThreadStore(await Fixture.OpenMigratedAsync());
        var theirs = new PostgresThreadStore(await other.OpenMigratedAsync());

        await mine.WriteAsync(new ThreadWrite(State("thr_1", 0), 0), Ct);

        Assert.NotNull(await mine.ReadAsync("thr_1", Ct));
        Assert.Null(await theirs.ReadAsync("thr_1", Ct));
        Assert.Equal(1, await theirs.WriteAsync(new ThreadWrite(State("thr_1", 0), 0), Ct));
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

    private static async Task<List<T>> ListAsync<T>(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var values = new List<T>();
        while (await reader.ReadAsync(Ct))
        {
            values.Add(reader.GetFieldValue<T>(0));
        }

        return values;
    }
}
