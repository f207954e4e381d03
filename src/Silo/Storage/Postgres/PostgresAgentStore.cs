using Conversations.Grains.Abstractions.Agents;
using Npgsql;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// Agents stored in PostgreSQL (<c>agents</c>: one <c>jsonb</c> definition per name), shared by every silo of the
/// cluster. It is an <see cref="IAgentCatalog"/> by itself; seeding it from configuration is the host's concern.
/// Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class PostgresAgentStore(PostgresDatabase database) : IAgentCatalog
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async ValueTask<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Get, connection);
        command.Parameters.Add(Text("name", name));
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is string json ? FromJson<AgentDefinition>(json, $"agent '{name}'") : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.List, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var agents = new List<AgentDefinition>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            agents.Add(FromJson<AgentDefinition>(reader.GetString(1), $"agent '{reader.GetString(0)}'"));
        }

        return agents;
    }

    /// <inheritdoc />
    public async ValueTask UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(agent);
        ArgumentException.ThrowIfNullOrWhiteSpace(agent.Name, nameof(agent));

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Upsert, connection);
        command.Parameters.Add(Text("name", agent.Name));
        command.Parameters.Add(Jsonb("definition", ToJson(agent)));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The agent store's SQL, all of it.</summary>
    private static class Sql
    {
        public const string Get = "SELECT definition::text FROM agents WHERE name = @name;";

        // COLLATE "C": ordinal order, as the configured catalog lists agents.
        public const string List = """SELECT name, definition::text FROM agents ORDER BY name COLLATE "C";""";

        public const string Upsert = """
            INSERT INTO agents (name, definition, updated_at) VALUES (@name, @definition, now())
            ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at;
            """;
    }
}
