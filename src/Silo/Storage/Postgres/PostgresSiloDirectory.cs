using Conversations.Silo.Runtime;
using Npgsql;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="ISiloDirectory"/> over PostgreSQL's <c>silos</c> table; start times and heartbeats are the database's
/// <c>now()</c>. Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class PostgresSiloDirectory(PostgresDatabase database) : ISiloDirectory
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task RegisterAsync(string siloId, string address, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        ArgumentException.ThrowIfNullOrWhiteSpace(address);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Register, connection);
        command.Parameters.Add(Text("silo_id", siloId));
        command.Parameters.Add(Text("address", address));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> HeartbeatAsync(string siloId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(siloId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Heartbeat, connection);
        command.Parameters.Add(Text("silo_id", siloId));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async Task MarkStoppedAsync(string siloId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(siloId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.MarkStopped, connection);
        command.Parameters.Add(Text("silo_id", siloId));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SiloEntry>> ListActiveAsync(TimeSpan maxHeartbeatAge, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxHeartbeatAge, TimeSpan.Zero);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.ListActive, connection);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("max_age", maxHeartbeatAge));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var silos = new List<SiloEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            silos.Add(new SiloEntry(
                reader.GetString(0),
                reader.GetString(1),
                reader.GetFieldValue<DateTimeOffset>(2),
                reader.GetFieldValue<DateTimeOffset>(3),
                reader.GetString(4)));
        }

        return silos;
    }

    /// <summary>The silo directory's SQL, all of it.</summary>
    private static class Sql
    {
        public const string Register = """
            INSERT INTO silos (silo_id, address, started_at, heartbeat_at, status)
            VALUES (@silo_id, @address, now(), now(), 'active')
            ON CONFLICT (silo_id) DO UPDATE SET
                address = excluded.address, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, status = excluded.status;
            """;

        public const string Heartbeat = "UPDATE silos SET heartbeat_at = now() WHERE silo_id = @silo_id AND status = 'active';";

        public const string MarkStopped = "UPDATE silos SET status = 'stopped' WHERE silo_id = @silo_id;";

        public const string ListActive = """
            SELECT silo_id, address, started_at, heartbeat_at, status FROM silos
            WHERE status = 'active' AND heartbeat_at > now() - @max_age
            ORDER BY silo_id COLLATE "C";
            """;
    }
}
