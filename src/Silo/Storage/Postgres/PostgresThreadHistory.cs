using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Npgsql;
using NpgsqlTypes;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IThreadHistory"/> over PostgreSQL: a thread's messages are rows of <c>messages</c> keyed by
/// (thread, ordinal) and unique by (thread, id), its runs rows of <c>runs</c> keyed by (thread, id); both hold
/// <c>ContractJson</c> bodies as <c>jsonb</c>. Messages are only ever inserted: a write whose message takes an
/// ordinal or id the thread already has fails whole with <see cref="HistoryConflictException"/>. Runs are inserted
/// or replaced. Every database failure is raised as <see cref="StorageUnavailableException"/>.
/// Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
/// <remarks>
/// <c>jsonb</c> keeps values, not text: the keys of a stored object come back in PostgreSQL's order (shorter keys
/// first), not in the order they were written.
/// </remarks>
public sealed class PostgresThreadHistory(PostgresDatabase database) : IThreadHistory
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(
        string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterOrdinal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);

        return ReadBodiesAsync<ThreadMessage>(
            $"read the messages of thread '{threadId}'",
            Sql.ReadMessages,
            [Text("thread_id", threadId), new NpgsqlParameter<int>("after_ordinal", afterOrdinal), new NpgsqlParameter<int>("limit", limit)],
            $"a message of thread '{threadId}'",
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(messageId);

        return _database.RunAsync($"find message '{messageId}' of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.FindMessageOrdinal, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(Text("id", messageId));
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) is int ordinal ? ordinal : (int?)null;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> GetLastOrdinalAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        return _database.RunAsync($"read the last message ordinal of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.LastOrdinal, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) is int last ? last : 0;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(runId);

        return _database.RunAsync($"read run '{runId}' of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.ReadRun, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(Text("id", runId));
            var result = await command.ExecuteScalarAsync(token).ConfigureAwait(false);
            return result is string json ? FromJson<RunRecord>(json, $"run '{runId}' of thread '{threadId}'") : null;
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>A thread's runs are found by the primary key's thread prefix, then sorted by start time.</remarks>
    public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(string threadId, int offset, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);

        return ReadBodiesAsync<RunRecord>(
            $"read the runs of thread '{threadId}'",
            Sql.ReadRuns,
            [Text("thread_id", threadId), new NpgsqlParameter<int>("offset", offset), new NpgsqlParameter<int>("limit", limit)],
            $"a run of thread '{threadId}'",
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>Served by the partial index <c>runs_running</c>, which holds only running runs.</remarks>
    public Task<IReadOnlyList<RunRecord>> ReadUnfinishedRunsAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        return ReadBodiesAsync<RunRecord>(
            $"read the running runs of thread '{threadId}'", Sql.ReadRunningRuns, [Text("thread_id", threadId)], $"a run of thread '{threadId}'", cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// One statement, so one round trip and one transaction: the messages' insert and the runs' upsert, each over
    /// arrays. A message colliding with a stored one (same ordinal or same id) violates a unique key, the statement
    /// fails and writes nothing, and the violation is raised as <see cref="HistoryConflictException"/>. The
    /// arguments are checked before anything is sent: an ordinal below 1, a missing id, an ordinal or id repeated
    /// within the call, or a run of another thread is an <see cref="ArgumentException"/>.
    /// A retry after a <see cref="StorageUnavailableException"/> may find its own messages stored (the failure may
    /// have come after the commit) and so see a conflict.
    /// </remarks>
    public async Task AppendAsync(
        string threadId, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken = default)
    {
        StorageArguments.ValidateAppend(threadId, messages, runs);
        if (messages.Count == 0 && runs.Count == 0)
        {
            return;
        }

        await _database.RunAsync($"append to the history of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Append, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(Array("ordinals", NpgsqlDbType.Integer, messages.Select(m => m.Ordinal).ToArray()));
            command.Parameters.Add(Array("message_ids", NpgsqlDbType.Text, messages.Select(m => m.Id).ToArray()));
            command.Parameters.Add(Array("message_bodies", NpgsqlDbType.Jsonb, messages.Select(ToJson).ToArray()));
            command.Parameters.Add(Array("run_ids", NpgsqlDbType.Text, runs.Select(r => r.Id).ToArray()));
            command.Parameters.Add(Array("run_bodies", NpgsqlDbType.Jsonb, runs.Select(ToJson).ToArray()));
            try
            {
                await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.TableName == "messages")
            {
                throw new HistoryConflictException(threadId, Conflict(e.ConstraintName, messages));
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>One statement: both deletes run in its one transaction.</remarks>
    public async Task RemoveAsync(string threadId, int fromOrdinal, IReadOnlyList<string> runIds, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromOrdinal);
        ArgumentNullException.ThrowIfNull(runIds);

        await _database.RunAsync($"remove rows from the history of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Remove, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(new NpgsqlParameter<int>("from_ordinal", fromOrdinal));
            command.Parameters.Add(Array("run_ids", NpgsqlDbType.Text, runIds.ToArray()));
            await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The <c>ContractJson</c> bodies a query's first column holds, read as <typeparamref name="T"/>.</summary>
    private Task<IReadOnlyList<T>> ReadBodiesAsync<T>(
        string operation, string sql, IReadOnlyList<NpgsqlParameter> parameters, string what, CancellationToken cancellationToken) =>
        _database.RunAsync<IReadOnlyList<T>>(operation, async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var parameter in parameters)
            {
                command.Parameters.Add(parameter);
            }

            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            var rows = new List<T>();
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                rows.Add(FromJson<T>(reader.GetString(0), what));
            }

            return rows;
        }, cancellationToken);

    private static string Conflict(string? constraint, IReadOnlyList<ThreadMessage> messages)
    {
        var range = messages.Count == 1
            ? $"message '{messages[0].Id}' at ordinal {messages[0].Ordinal}"
            : $"{messages.Count} messages at ordinals {messages.Min(m => m.Ordinal)} to {messages.Max(m => m.Ordinal)}";
        var what = constraint == Sql.MessageIdKey ? "an id" : "an ordinal";
        return $"{range}: {what} the thread already has was stored by another writer.";
    }

    /// <summary>The thread history's SQL, all of it.</summary>
    private static class Sql
    {
        /// <summary>The name PostgreSQL gave <c>UNIQUE (thread_id, id)</c> of <c>messages</c> (migration 1).</summary>
        public const string MessageIdKey = "messages_thread_id_id_key";

        // The messages' insert has no ON CONFLICT: a collision must fail the statement, runs included.
        public const string Append = """
            WITH new_messages AS (
                INSERT INTO messages (thread_id, ordinal, id, body)
                SELECT @thread_id, m.ordinal, m.id, m.body
                FROM unnest(@ordinals, @message_ids, @message_bodies) AS m (ordinal, id, body)
            )
            INSERT INTO runs (thread_id, id, body)
            SELECT @thread_id, r.id, r.body
            FROM unnest(@run_ids, @run_bodies) AS r (id, body)
            ON CONFLICT (thread_id, id) DO UPDATE SET body = excluded.body;
            """;

        public const string Remove = """
            WITH removed_messages AS (
                DELETE FROM messages WHERE thread_id = @thread_id AND ordinal >= @from_ordinal
            )
            DELETE FROM runs WHERE thread_id = @thread_id AND id = ANY (@run_ids);
            """;

        public const string ReadMessages = """
            SELECT body::text FROM messages
            WHERE thread_id = @thread_id AND ordinal > @after_ordinal
            ORDER BY ordinal
            LIMIT @limit;
            """;

        public const string FindMessageOrdinal = "SELECT ordinal FROM messages WHERE thread_id = @thread_id AND id = @id;";

        public const string LastOrdinal = "SELECT MAX(ordinal) FROM messages WHERE thread_id = @thread_id;";

        public const string ReadRun = "SELECT body::text FROM runs WHERE thread_id = @thread_id AND id = @id;";

        public const string ReadRuns = """
            SELECT body::text FROM runs
            WHERE thread_id = @thread_id
            ORDER BY (body ->> 'startedAt')::timestamptz DESC, id DESC
            LIMIT @limit OFFSET @offset;
            """;

        // The status test is spelled as in the index runs_running (migration 10), with a literal, so the planner
        // can use it. startedAt is ContractJson's ISO 8601 text of RunRecord.StartedAt.
        public const string ReadRunningRuns = $"""
            SELECT body::text FROM runs
            WHERE thread_id = @thread_id AND (body ->> 'status') = '{RunStatuses.Running}'
            ORDER BY (body ->> 'startedAt')::timestamptz, id;
            """;
    }
}
