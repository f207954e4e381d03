using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// One SQLite database file: its connection string, connection set-up and schema migrations. Thread-safe and
/// meant to be a singleton per file; every operation opens its own (pooled) connection.
/// </summary>
/// <remarks>
/// Connections are pooled by connection string, so idle connections keep the file (and its <c>-wal</c> and
/// <c>-shm</c> files) open after an operation ends. <see cref="Dispose"/> clears the pool of this file, which is
/// what to do before deleting or moving it.
/// Microsoft.Data.Sqlite does its I/O synchronously (its async methods complete synchronously), so its objects are
/// disposed with plain <c>using</c>.
/// </remarks>
public sealed class SqliteDatabase : IDisposable
{
    // Per-connection settings, applied every time a connection is opened (pooled connections included).
    // journal_mode=WAL is persistent in the file and needs a write lock to change, so MigrateAsync sets it once.
    private const string ConnectionPragmas =
        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

    private readonly string _directory;
    private readonly SqliteWriter _writer;
    private volatile bool _directoryEnsured;

    /// <summary>Creates the database for the file at <paramref name="path"/>; nothing touches the disk until it is used.</summary>
    public SqliteDatabase(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        _directory = System.IO.Path.GetDirectoryName(Path)
            ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        ConnectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
        _writer = new SqliteWriter(this);
    }

    /// <summary>The full path of the database file.</summary>
    public string Path { get; }

    /// <summary>The connection string of the file.</summary>
    public string ConnectionString { get; }

    /// <summary>The schema version this code migrates to.</summary>
    public static int LatestSchemaVersion => SqliteSchema.LatestVersion;

    /// <summary>
    /// Opens a connection with the busy timeout, <c>synchronous=NORMAL</c> and foreign keys set. Creates the file's
    /// directory when missing. The caller disposes the connection (which returns it to the pool). For reads: every
    /// write goes through <see cref="WriteAsync"/>.
    /// </summary>
    public Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Microsoft.Data.Sqlite opens synchronously whatever the method; there is nothing to await.
        return Task.FromResult(OpenConnection());
    }

    /// <summary>
    /// Runs <paramref name="write"/> in this file's write queue: in a savepoint of a transaction it shares with the
    /// writes queued beside it, committed once for all (<see cref="SqliteWriter"/>). The delegate runs on the queue's
    /// thread and must only use the connection and transaction it is given; what it throws is what the returned task
    /// throws, and none of its statements stay. The token cancels a write that has not started.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> write, CancellationToken cancellationToken = default) =>
        _writer.WriteAsync(write, cancellationToken);

    internal SqliteConnection OpenConnection()
    {
        if (!_directoryEnsured)
        {
            Directory.CreateDirectory(_directory);
            _directoryEnsured = true;
        }

        var connection = new SqliteConnection(ConnectionString);
        try
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = ConnectionPragmas;
            command.ExecuteNonQuery();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Switches the file to WAL and applies the migrations it lacks, each in its own <c>BEGIN IMMEDIATE</c>
    /// transaction that re-reads <c>PRAGMA user_version</c> first, so running it again, or from several processes
    /// at once, applies every migration exactly once. Fails when the file's schema is newer than this code.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false);

        var migrations = SqliteSchema.Migrations;
        for (var target = 1; target <= migrations.Count; target++)
        {
            // BEGIN IMMEDIATE takes the write lock up front (waiting out busy_timeout), so two processes
            // migrating at once take turns and the later one sees the earlier one's user_version.
            using var transaction = connection.BeginTransaction(deferred: false);
            var current = await GetUserVersionAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
            if (current > migrations.Count)
            {
                throw new InvalidOperationException(
                    $"The database '{Path}' has schema version {current}; this code knows versions up to {migrations.Count}.");
            }

            if (current >= target)
            {
                continue; // disposing the transaction rolls it back: nothing was written
            }

            await ExecuteAsync(connection, transaction, migrations[target - 1], cancellationToken).ConfigureAwait(false);
            // PRAGMA takes no parameters; target is an int from this loop.
            await ExecuteAsync(
                connection,
                transaction,
                string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {target};"),
                cancellationToken).ConfigureAwait(false);
            transaction.Commit();
        }
    }

    /// <summary>Reads the file's schema version (<c>PRAGMA user_version</c>).</summary>
    public async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await GetUserVersionAsync(connection, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes this file's idle pooled connections, so the file can be deleted or moved. The instance stays usable.</summary>
    public void Dispose()
    {
        using var connection = new SqliteConnection(ConnectionString);
        SqliteConnection.ClearPool(connection);
    }

    private static async Task<int> GetUserVersionAsync(
        SqliteConnection connection, SqliteTransaction? transaction, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "PRAGMA user_version;";
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return Convert.ToInt32(result, CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(
        SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
