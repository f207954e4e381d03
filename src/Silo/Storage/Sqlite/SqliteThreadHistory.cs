using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// <see cref="IThreadHistory"/> over SQLite: messages and runs are rows of <c>messages</c> and <c>runs</c> holding
/// <c>ContractJson</c> bodies. An append is one write of the file's queue (<see cref="SqliteDatabase.WriteAsync"/>); a
/// message whose ordinal or id the thread already has fails it whole with <see cref="HistoryConflictException"/>.
/// Thread-safe; needs <see cref="SqliteDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class SqliteThreadHistory(SqliteDatabase database) : IThreadHistory
{
    private const int UniqueViolation = 19; // SQLITE_CONSTRAINT

    private readonly SqliteDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterOrdinal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadListAsync<ThreadMessage>(
            Sql.ReadMessages,
            command =>
            {
                command.Parameters.AddWithValue("$thread_id", threadId);
                command.Parameters.AddWithValue("$after_ordinal", afterOrdinal);
                command.Parameters.AddWithValue("$limit", limit);
            },
            $"a message of thread '{threadId}'",
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(messageId);
        var result = await ScalarAsync(Sql.FindMessageOrdinal, threadId, ("$id", messageId), cancellationToken).ConfigureAwait(false);
        return result is long ordinal ? checked((int)ordinal) : null;
    }

    /// <inheritdoc />
    public async Task<int> GetLastOrdinalAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        var result = await ScalarAsync(Sql.LastOrdinal, threadId, null, cancellationToken).ConfigureAwait(false);
        return result is long ordinal ? checked((int)ordinal) : 0;
    }

    /// <inheritdoc />
    public async Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var result = await ScalarAsync(Sql.ReadRun, threadId, ("$id", runId), cancellationToken).ConfigureAwait(false);
        return result is string json ? SqliteValues.FromJson<RunRecord>(json, $"run '{runId}' of thread '{threadId}'") : null;
    }

    /// <inheritdoc />
    /// <remarks>Newest first by insertion (a run's row is inserted when it starts and replaced in place).</remarks>
    public Task<IReadOnlyList<RunRecord>> ReadRunsAsync(string threadId, int offset, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadListAsync<RunRecord>(
            Sql.ReadRuns,
            command =>
            {
                command.Parameters.AddWithValue("$thread_id", threadId);
                command.Parameters.AddWithValue("$offset", offset);
                command.Parameters.AddWithValue("$limit", limit);
            },
            $"a run of thread '{threadId}'",
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<RunRecord>> ReadUnfinishedRunsAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        return ReadListAsync<RunRecord>(
            Sql.ReadUnfinishedRuns,
            command => command.Parameters.AddWithValue("$thread_id", threadId),
            $"a run of thread '{threadId}'",
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task AppendAsync(string threadId, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken = default)
    {
        StorageArguments.ValidateAppend(threadId, messages, runs);
        if (messages.Count == 0 && runs.Count == 0)
        {
            return;
        }

        try
        {
            await _database.WriteAsync((connection, transaction) =>
            {
                if (messages.Count > 0)
                {
                    using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = Sql.InsertMessage;
                    command.Parameters.AddWithValue("$thread_id", threadId);
                    var ordinal = command.Parameters.Add("$ordinal", SqliteType.Integer);
                    var id = command.Parameters.Add("$id", SqliteType.Text);
                    var body = command.Parameters.Add("$body", SqliteType.Text);
                    foreach (var message in messages)
                    {
                        ordinal.Value = message.Ordinal;
                        id.Value = message.Id;
                        body.Value = SqliteValues.ToJson(message);
                        try
                        {
                            command.ExecuteNonQuery();
                        }
                        catch (SqliteException ex) when (ex.SqliteErrorCode == UniqueViolation)
                        {
                            throw new HistoryConflictException(threadId, $"message '{message.Id}' at ordinal {message.Ordinal} is taken.", ex);
                        }
                    }
                }

                if (runs.Count > 0)
                {
                    using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = Sql.UpsertRun;
                    command.Parameters.AddWithValue("$thread_id", threadId);
                    var id = command.Parameters.Add("$id", SqliteType.Text);
                    var status = command.Parameters.Add("$status", SqliteType.Text);
                    var body = command.Parameters.Add("$body", SqliteType.Text);
                    foreach (var run in runs)
                    {
                        id.Value = run.Id;
                        status.Value = run.Status;
                        body.Value = SqliteValues.ToJson(run);
                        command.ExecuteNonQuery();
                    }
                }

                return messages.Count + runs.Count;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Unavailable(ex);
        }
    }

    /// <inheritdoc />
    public async Task RemoveAsync(string threadId, int fromOrdinal, IReadOnlyList<string> runIds, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromOrdinal);
        ArgumentNullException.ThrowIfNull(runIds);
        try
        {
            await _database.WriteAsync((connection, transaction) =>
            {
                using (var command = connection.CreateCommand())
                {
                    command.Transaction = transaction;
                    command.CommandText = Sql.RemoveMessages;
                    command.Parameters.AddWithValue("$thread_id", threadId);
                    command.Parameters.AddWithValue("$from_ordinal", fromOrdinal);
                    command.ExecuteNonQuery();
                }

                using (var command = connection.CreateCommand())
                {
                    command.Transaction = transaction;
                    command.CommandText = Sql.RemoveRun;
                    command.Parameters.AddWithValue("$thread_id", threadId);
                    var id = command.Parameters.Add("$id", SqliteType.Text);
                    foreach (var runId in runIds)
                    {
                        id.Value = runId;
                        command.ExecuteNonQuery();
                    }
                }

                return runIds.Count;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Unavailable(ex);
        }
    }

    private async Task<IReadOnlyList<T>> ReadListAsync<T>(string sql, Action<SqliteCommand> bind, string what, CancellationToken cancellationToken)
    {
        try
        {
            using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            bind(command);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var rows = new List<T>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add(SqliteValues.FromJson<T>(reader.GetString(0), what));
            }

            return rows;
        }
        catch (SqliteException ex)
        {
            throw Unavailable(ex);
        }
    }

    private async Task<object?> ScalarAsync(string sql, string threadId, (string Name, string Value)? parameter, CancellationToken cancellationToken)
    {
        try
        {
            using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$thread_id", threadId);
            if (parameter is { } p)
            {
                command.Parameters.AddWithValue(p.Name, p.Value);
            }

            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw Unavailable(ex);
        }
    }

    private StorageUnavailableException Unavailable(SqliteException ex) =>
        new($"The database '{_database.Path}' failed: {ex.Message}", ex);

    /// <summary>The history's SQL, all of it.</summary>
    private static class Sql
    {
        public const string InsertMessage = "INSERT INTO messages (thread_id, ordinal, id, body) VALUES ($thread_id, $ordinal, $id, $body);";

        public const string UpsertRun = """
            INSERT INTO runs (thread_id, id, status, body)
            VALUES ($thread_id, $id, $status, $body)
            ON CONFLICT (thread_id, id) DO UPDATE SET status = excluded.status, body = excluded.body;
            """;

        public const string ReadMessages = """
            SELECT body FROM messages
            WHERE thread_id = $thread_id AND ordinal > $after_ordinal
            ORDER BY ordinal
            LIMIT $limit;
            """;

        public const string FindMessageOrdinal = "SELECT ordinal FROM messages WHERE thread_id = $thread_id AND id = $id;";

        public const string LastOrdinal = "SELECT MAX(ordinal) FROM messages WHERE thread_id = $thread_id;";

        public const string ReadRun = "SELECT body FROM runs WHERE thread_id = $thread_id AND id = $id;";

        public const string RemoveMessages = "DELETE FROM messages WHERE thread_id = $thread_id AND ordinal >= $from_ordinal;";

        public const string RemoveRun = "DELETE FROM runs WHERE thread_id = $thread_id AND id = $id;";

        public const string ReadRuns = "SELECT body FROM runs WHERE thread_id = $thread_id ORDER BY rowid DESC LIMIT $limit OFFSET $offset;";

        public const string ReadUnfinishedRuns = "SELECT body FROM runs WHERE thread_id = $thread_id AND status = 'running' ORDER BY rowid;";
    }
}
