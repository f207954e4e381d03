using Conversations.Silo.Storage.Postgres;
using Npgsql;

namespace Conversations.Tests.Postgres;

/// <summary>
/// A PostgreSQL schema of its own for one test, on the server named by <c>CONVERSATIONS_TEST_POSTGRES</c> (else
/// <see cref="DefaultConnectionString"/>), so tests run in parallel without sharing state. The schema is created by
/// the first migration and dropped, with everything in it, on dispose. When no server answers, the test fails with a
/// message saying how to provide one; it is never skipped.
/// </summary>
internal sealed class PostgresFixture : IAsyncDisposable
{
    public const string EnvironmentVariable = "CONVERSATIONS_TEST_POSTGRES";
    public const string DefaultConnectionString = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres";

    // Checked once per test run; a failure fails every PostgreSQL test with the same message, quickly.
    private static readonly Lazy<Task<string>> Server = new(CheckServerAsync);

    private readonly List<PostgresDatabase> _opened = [];

    private PostgresFixture(string connectionString)
    {
        ConnectionString = connectionString;
        Schema = $"test_{Guid.NewGuid():N}";
    }

    /// <summary>The server's connection string (without the schema).</summary>
    public string ConnectionString { get; }

    /// <summary>This test's schema.</summary>
    public string Schema { get; }

    /// <summary>A fixture with a fresh schema name; fails the test when no server answers.</summary>
    public static async Task<PostgresFixture> CreateAsync() => new(await Server.Value);

    /// <summary>A new <see cref="PostgresDatabase"/> (its own pool, as another node would have) on this test's schema, not migrated.</summary>
    /// <param name="settings">More connection string settings (<c>Timezone=…</c>), or null.</param>
    public PostgresDatabase Open(string? settings = null)
    {
        var database = new PostgresDatabase(settings is null ? ConnectionString : $"{ConnectionString};{settings}", Schema);
        lock (_opened)
        {
            _opened.Add(database);
        }

        return database;
    }

    /// <summary>A new <see cref="PostgresDatabase"/> on this test's schema, migrated.</summary>
    public async Task<PostgresDatabase> OpenMigratedAsync()
    {
        var database = Open();
        await database.MigrateAsync(TestContext.Current.CancellationToken);
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        PostgresDatabase[] opened;
        lock (_opened)
        {
            opened = [.. _opened];
        }

        foreach (var database in opened)
        {
            await database.DisposeAsync();
        }

        await using var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var command = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE;");
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> CheckServerAsync()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        var connectionString = string.IsNullOrWhiteSpace(configured) ? DefaultConnectionString : configured;
        var probe = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 5, Pooling = false };
        try
        {
            await using var connection = new NpgsqlConnection(probe.ConnectionString);
            await connection.OpenAsync();
            return connectionString;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or ArgumentException)
        {
            Assert.Fail(
                $"The PostgreSQL tests need a server and none answered at {Describe(probe)} ({e.GetType().Name}: {e.Message}). " +
                $"Set {EnvironmentVariable} to an Npgsql connection string of a server where the user may create schemas " +
                $"(default: \"{DefaultConnectionString}\"). Or run the tests with tests/run.sh, which starts a private server itself " +
                "(installing PostgreSQL when it is missing), or get one with `docker compose up -d postgres` in the repository.");
            throw; // unreachable: Assert.Fail throws
        }
    }

    private static string Describe(NpgsqlConnectionStringBuilder builder) =>
        $"Host={builder.Host};Port={builder.Port};Username={builder.Username};Database={builder.Database ?? builder.Username}";
}
