using System.Data.Common;
using System.Text.RegularExpressions;
using Npgsql;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// The cluster's PostgreSQL database: one <see cref="NpgsqlDataSource"/> (one connection pool) and the schema
/// migrations. Thread-safe and meant to be a singleton; every operation opens its own pooled connection.
/// </summary>
/// <remarks>
/// With a <see cref="Schema"/>, every connection's <c>search_path</c> is that schema alone, so all tables live in it
/// (tests give each test a schema of its own; a deployment may share a database between environments).
/// </remarks>
public sealed partial class PostgresDatabase : IAsyncDisposable, IDisposable
{
    // pg_advisory_xact_lock(int, int): this class id, and hashtext of the schema, so migrations of one schema are
    // serialised across nodes and migrations of different schemas do not wait for each other.
    private const int MigrationLockClass = 0x436F6E76; // "Conv"

    private readonly string _lockSchema;

    /// <summary>Creates the database from an Npgsql connection string, optionally confined to <paramref name="schema"/>.</summary>
    /// <param name="connectionString">An Npgsql connection string (<c>Host=…;Username=…;Password=…;Database=…</c>).</param>
    /// <param name="schema">A schema for every table (lower-case letters, digits and '_'); null for the connection string's search path.</param>
    /// <param name="maxPoolSize">
    /// The most connections the pool opens, unless the connection string sets <c>Maximum Pool Size</c> itself; null
    /// for Npgsql's default (100).
    /// </param>
    public PostgresDatabase(string connectionString, string? schema = null, int? maxPoolSize = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (maxPoolSize is { } poolSize)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(poolSize, 1, nameof(maxPoolSize));
            if (!SetsMaxPoolSize(connectionString))
            {
                builder.MaxPoolSize = poolSize;
            }
        }

        if (schema is not null)
        {
            if (!SchemaName().IsMatch(schema))
            {
                throw new ArgumentException(
                    $"'{schema}' is not a usable schema name: use 1 to 63 lower-case letters, digits and '_', starting with a letter or '_'.",
                    nameof(schema));
            }

            builder.SearchPath = schema;
        }

        Schema = schema;
        _lockSchema = schema ?? builder.SearchPath ?? "public";
        ConnectionString = builder.ConnectionString;
        DataSource = new NpgsqlDataSourceBuilder(ConnectionString).Build();
    }

    /// <summary>The schema every table lives in, or null for the connection string's search path.</summary>
    public string? Schema { get; }

    /// <summary>
    /// The connection string of <see cref="DataSource"/>: the one given, with <c>Search Path</c> set to
    /// <see cref="Schema"/> (when there is one) and the pool bound applied. This is what Orleans' ADO.NET providers
    /// need (or pass them <see cref="DataSource"/> itself), so their statements find the same tables.
    /// </summary>
    public string ConnectionString { get; }

    /// <summary>The data source (connection pool) of this database.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The schema version this code migrates to.</summary>
    public static int LatestSchemaVersion => PostgresSchema.LatestVersion;

    /// <summary>Opens a pooled connection; the caller disposes it.</summary>
    public ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        DataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>
    /// Applies the migrations the database lacks, all in one transaction that first takes a transaction-scoped
    /// advisory lock: nodes starting at once take turns, the later ones find the work done, and running it again is
    /// a no-op. Creates <see cref="Schema"/> when missing. Fails when the database's schema is newer than this code.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        await using (var command = new NpgsqlCommand(Sql.Lock, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<int>("lock_class", MigrationLockClass));
            command.Parameters.Add(new NpgsqlParameter<string>("lock_schema", _lockSchema));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (Schema is not null)
        {
            // An identifier cannot be a parameter; Schema matched SchemaName() in the constructor.
            await ExecuteAsync(connection, transaction, $"CREATE SCHEMA IF NOT EXISTS \"{Schema}\";", cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, transaction, Sql.CreateMigrationsTable, cancellationToken).ConfigureAwait(false);
        var current = await ReadVersionAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        var migrations = PostgresSchema.Migrations;
        if (current > migrations.Count)
        {
            throw new InvalidOperationException(
                $"The database{(Schema is null ? "" : $" schema '{Schema}'")} has schema version {current}; this code knows versions up to {migrations.Count}.");
        }

        foreach (var migration in migrations.Where(m => m.Version > current))
        {
            await ExecuteAsync(connection, transaction, migration.Sql, cancellationToken).ConfigureAwait(false);
            await using var record = new NpgsqlCommand(Sql.RecordMigration, connection, transaction);
            record.Parameters.Add(new NpgsqlParameter<int>("version", migration.Version));
            record.Parameters.Add(new NpgsqlParameter<string>("description", migration.Description));
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the schema version recorded in <c>schema_migrations</c>; 0 before the first migration.</summary>
    public async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.MigrationsTableExists, connection);
        if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
        {
            return 0;
        }

        return await ReadVersionAsync(connection, null, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    /// <inheritdoc />
    public void Dispose() => DataSource.Dispose();

    private static async Task<int> ReadVersionAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(Sql.CurrentVersion, connection, transaction);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task ExecuteAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // The keywords as written (the base builder keeps them); Npgsql takes them in any case, with or without spaces.
    private static bool SetsMaxPoolSize(string connectionString) =>
        new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(key => key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant())
            .Any(key => key is "maximumpoolsize" or "maxpoolsize");

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex SchemaName();

    /// <summary>The migration runner's SQL, all of it.</summary>
    private static class Sql
    {
        public const string Lock = "SELECT pg_advisory_xact_lock(@lock_class, hashtext(@lock_schema));";

        public const string CreateMigrationsTable = """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer     NOT NULL PRIMARY KEY,
                description text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            );
            """;

        public const string CurrentVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations;";

        public const string RecordMigration = "INSERT INTO schema_migrations (version, description) VALUES (@version, @description);";

        // to_regclass resolves through the search path, so this finds the table in Schema when one is set.
        public const string MigrationsTableExists = "SELECT to_regclass('schema_migrations') IS NOT NULL;";
    }
}
