using System.Globalization;
using Conversations.Silo.Storage.Sqlite;

namespace Conversations.Tests.Storage;

public sealed class SqliteDatabaseTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migrate_creates_the_directory_the_schema_and_switches_to_wal()
    {
        using var file = new TempSqliteFile();
        Assert.False(Directory.Exists(Path.GetDirectoryName(file.FilePath)));
        var database = file.Open();

        await database.MigrateAsync(Ct);

        Assert.True(File.Exists(file.FilePath));
        Assert.Equal(SqliteDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.True(SqliteDatabase.LatestSchemaVersion >= 2);
        Assert.Equal(["events", "grain_state", "messages", "runs", "thread_index"], await TablesAsync(database));
        Assert.Equal("wal", await ScalarAsync(database, "PRAGMA journal_mode;"));
    }

    [Fact]
    public async Task Connections_have_foreign_keys_on_and_a_busy_timeout()
    {
        using var file = new TempSqliteFile();
        var database = await file.OpenMigratedAsync();

        Assert.Equal(1L, await ScalarAsync(database, "PRAGMA foreign_keys;"));
        Assert.Equal(5000L, await ScalarAsync(database, "PRAGMA busy_timeout;"));
        Assert.Equal(1L, await ScalarAsync(database, "PRAGMA synchronous;")); // NORMAL
    }

    [Fact]
    public async Task Migrating_again_is_a_no_op_that_keeps_the_data()
    {
        using var file = new TempSqliteFile();
        var database = await file.OpenMigratedAsync();
        var history = new SqliteThreadHistory(database);
        await history.AppendAsync("thr_1", [StorageSamples.UserMessage(1)], [], Ct);

        await database.MigrateAsync(Ct);
        await file.Open().MigrateAsync(Ct);

        Assert.Equal(SqliteDatabase.LatestSchemaVersion, await database.GetSchemaVersionAsync(Ct));
        Assert.Single(await history.ReadMessagesAsync("thr_1", 0, 10, Ct));
    }

    [Fact]
    public async Task Concurrent_migrations_from_several_instances_apply_each_migration_once()
    {
        using var file = new TempSqliteFile();
        var databases = Enumerable.Range(0, 6).Select(_ => file.Open()).ToArray();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var migrations = databases.Select(d => Task.Run(async () =>
        {
            await gate.Task;
            await d.MigrateAsync(Ct);
        }, Ct)).ToArray();
        gate.SetResult();
        await Task.WhenAll(migrations); // a migration applied twice would fail with "table already exists"

        Assert.Equal(SqliteDatabase.LatestSchemaVersion, await databases[0].GetSchemaVersionAsync(Ct));
        Assert.Equal(["events", "grain_state", "messages", "runs", "thread_index"], await TablesAsync(databases[^1]));
    }

    [Fact]
    public async Task Migrate_refuses_a_database_newer_than_the_code()
    {
        using var file = new TempSqliteFile();
        var database = await file.OpenMigratedAsync();
        var newer = SqliteDatabase.LatestSchemaVersion + 1;
        await ScalarAsync(database, string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {newer};"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => database.MigrateAsync(Ct));

        Assert.Contains(newer.ToString(CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Equal(newer, await database.GetSchemaVersionAsync(Ct));
    }

    [Fact]
    public void Constructor_rejects_an_empty_path()
    {
        Assert.ThrowsAny<ArgumentException>(() => new SqliteDatabase(" "));
    }

    private static async Task<object?> ScalarAsync(SqliteDatabase database, string sql)
    {
        using var connection = await database.OpenConnectionAsync(Ct);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(Ct);
    }

    private static async Task<string[]> TablesAsync(SqliteDatabase database)
    {
        using var connection = await database.OpenConnectionAsync(Ct);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name;";
        using var reader = await command.ExecuteReaderAsync(Ct);
        var names = new List<string>();
        while (await reader.ReadAsync(Ct))
        {
            names.Add(reader.GetString(0));
        }

        return [.. names];
    }
}
