using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Npgsql;
using NpgsqlTypes;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IThreadIndex"/> over PostgreSQL: one row of <c>thread_index</c> per thread, metadata as <c>jsonb</c>
/// (a metadata filter is one containment test, <c>@&gt;</c>, served by a GIN index), times as <c>timestamptz</c>
/// (microseconds: a row read back carries the time as stored, which is what a cursor must name). Every database
/// failure is raised as <see cref="StorageUnavailableException"/>. Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/>.
/// </summary>
public sealed class PostgresThreadIndex(PostgresDatabase database) : IThreadIndex
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task UpsertAsync(ThreadSummary thread, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(thread);
        ArgumentException.ThrowIfNullOrEmpty(thread.Id);
        await _database.RunAsync($"index thread '{thread.Id}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Upsert, connection);
            command.Parameters.Add(Text("id", thread.Id));
            command.Parameters.Add(Nullable("owner", thread.Owner));
            command.Parameters.Add(new NpgsqlParameter<DateTime>("created_at", Time(thread.CreatedAt)));
            command.Parameters.Add(new NpgsqlParameter<DateTime>("updated_at", Time(thread.UpdatedAt)));
            command.Parameters.Add(Jsonb("metadata", ToJson(thread.Metadata)));
            command.Parameters.Add(Nullable("title", thread.Title));
            command.Parameters.Add(Nullable("preview", thread.LastMessagePreview));
            command.Parameters.Add(new NpgsqlParameter<int>("message_count", thread.MessageCount));
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ThreadSummary?> GetAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        var rows = await ReadAsync($"read the index row of thread '{threadId}'", $"{Sql.Select} WHERE id = @id;", [Text("id", threadId)], cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ThreadSummary>> ListAsync(ThreadListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(query.Limit);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Offset);
        return ReadAsync("list threads", Sql.List,
        [
            new NpgsqlParameter<bool>("any_owner", query.AnyOwner),
            Nullable("owner", query.Owner),
            new NpgsqlParameter("after_updated", NpgsqlDbType.TimestampTz) { Value = query.After is { } after ? Time(after.UpdatedAt) : DBNull.Value },
            Nullable("after_id", query.After?.Id),
            Jsonb("metadata", ToJson(query.Metadata)),
            new NpgsqlParameter<int>("limit", query.Limit),
            new NpgsqlParameter<int>("offset", query.Offset),
        ], cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One statement, so one transaction: its deletes are data-modifying CTEs, each run exactly once.</remarks>
    public async Task EraseAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        await _database.RunAsync($"erase thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Erase, connection);
            command.Parameters.Add(Text("id", threadId));
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    private Task<IReadOnlyList<ThreadSummary>> ReadAsync(string operation, string sql, IReadOnlyList<NpgsqlParameter> parameters, CancellationToken cancellationToken) =>
        _database.RunAsync<IReadOnlyList<ThreadSummary>>(operation, async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var parameter in parameters)
            {
                command.Parameters.Add(parameter);
            }

            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            var rows = new List<ThreadSummary>();
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                var id = reader.GetString(0);
                rows.Add(new ThreadSummary(
                    id,
                    new DateTimeOffset(reader.GetFieldValue<DateTime>(2), TimeSpan.Zero),
                    new DateTimeOffset(reader.GetFieldValue<DateTime>(3), TimeSpan.Zero),
                    FromJson<Dictionary<string, string>>(reader.GetString(4), $"the metadata of thread '{id}'"),
                    reader.GetInt32(7),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6))
                {
                    Owner = reader.IsDBNull(1) ? null : reader.GetString(1),
                });
            }

            return rows;
        }, cancellationToken);

    private static NpgsqlParameter Nullable(string name, string? value) =>
        new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    /// <summary>The thread index's SQL, all of it.</summary>
    private static class Sql
    {
        public const string Upsert = """
            INSERT INTO thread_index (id, owner, created_at, updated_at, metadata, title, preview, message_count)
            VALUES (@id, @owner, @created_at, @updated_at, @metadata, @title, @preview, @message_count)
            ON CONFLICT (id) DO UPDATE SET
                owner = excluded.owner, created_at = excluded.created_at, updated_at = excluded.updated_at,
                metadata = excluded.metadata, title = excluded.title, preview = excluded.preview,
                message_count = excluded.message_count;
            """;

        public const string Select = "SELECT id, owner, created_at, updated_at, metadata::text, title, preview, message_count FROM thread_index";

        // (updated_at, id) < (…) is the keyset test thread_index_recent serves; an empty filter object contains in every row.
        public const string List = $"""
            {Select}
            WHERE (@any_owner OR owner IS NOT DISTINCT FROM @owner)
              AND (@after_updated IS NULL OR (updated_at, id) < (@after_updated, @after_id))
              AND metadata @> @metadata
            ORDER BY updated_at DESC, id DESC
            LIMIT @limit OFFSET @offset;
            """;

        public const string Erase = """
            WITH erased_events AS (DELETE FROM events WHERE thread_id = @id),
                 erased_messages AS (DELETE FROM messages WHERE thread_id = @id),
                 erased_runs AS (DELETE FROM runs WHERE thread_id = @id)
            DELETE FROM thread_index WHERE id = @id;
            """;
    }
}
