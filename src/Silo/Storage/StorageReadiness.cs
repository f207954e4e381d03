using Conversations.Grains.Health;
using Conversations.Silo.Storage.Postgres;
using Conversations.Silo.Storage.Sqlite;
using Npgsql;

namespace Conversations.Silo.Storage;

/// <summary>The embedded SQLite file can be opened and queried.</summary>
internal sealed class SqliteReadiness(SqliteDatabase database) : IReadinessCheck
{
    public string Name => "storage";

    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1;";
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return "the SQLite file cannot be used: " + ex.Message;
        }
    }
}

/// <summary>The cluster's PostgreSQL answers.</summary>
internal sealed class PostgresReadiness(PostgresDatabase database) : IReadinessCheck
{
    public string Name => "postgres";

    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT 1;", connection);
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return "PostgreSQL is unavailable";
        }
    }
}
