using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// <see cref="IThreadStore"/> over SQLite: a thread's state is one row of <c>threads</c> with a version, its
/// messages and runs are rows of <c>messages</c> and <c>runs</c> holding <c>ContractJson</c> bodies. A write is one
/// <c>BEGIN IMMEDIATE</c> transaction that checks the version first, so concurrent writers of a thread, in this
/// process or another, are serialised and all but one see <see cref="StorageConflictException"/>.
/// <see cref="ThreadWrite.FencingToken"/> is ignored: embedded mode is one process that owns every thread, so there
/// is no lease to check.
/// Thread-safe; needs <see cref="SqliteDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class SqliteThreadStore(SqliteDatabase database) : IThreadStore
{
    private readonly SqliteDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task<VersionedThreadState?> ReadAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.ReadThread;
        command.Parameters.AddWithValue("$thread_id", threadId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var version = reader.GetInt64(0);
        var state = SqliteValues.FromJson<ThreadGrainState>(reader.GetString(1), $"thread '{threadId}'");
        return new VersionedThreadState(state, version);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(
        string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterOrdinal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.ReadMessages;
        command.Parameters.AddWithValue("$thread_id", threadId);
        command.Parameters.AddWithValue("$after_ordinal", afterOrdinal);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var messages = new List<ThreadMessage>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            messages.Add(SqliteValues.FromJson<ThreadMessage>(reader.GetString(0), $"a message of thread '{threadId}'"));
        }

        return messages;
    }

    /// <inheritdoc />
    public async Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(messageId);

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.FindMessageOrdinal;
        command.Parameters.AddWithValue("$thread_id", threadId);
        command.Parameters.AddWithValue("$id", messageId);
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is long ordinal ? checked((int)ordinal) : null;
    }

    /// <inheritdoc />
    public async Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(runId);

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.ReadRun;
        command.Parameters.AddWithValue("$thread_id", threadId);
        command.Parameters.AddWithValue("$id", runId);
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is string json ? SqliteValues.FromJson<RunRecord>(json, $"run '{runId}' of thread '{threadId}'") : null;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Messages are upserted by ordinal: a message stored at the same ordinal is replaced (its id may not move to
    /// another ordinal: that violates <c>UNIQUE (thread_id, id)</c>, throws <see cref="SqliteException"/> and
    /// changes nothing). Runs are upserted by id.
    /// </remarks>
    public async Task<long> WriteAsync(ThreadWrite write, CancellationToken cancellationToken = default)
    {
        StorageArguments.ValidateWrite(write);
        var threadId = write.State.Id;
        var newVersion = write.ExpectedVersion + 1;

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // BEGIN IMMEDIATE: the write lock is taken before the version is read, so no one can write in between.
        using var transaction = connection.BeginTransaction(deferred: false);

        long? stored;
        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = Sql.ReadVersion;
            command.Parameters.AddWithValue("$thread_id", threadId);
            stored = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
        }

        if (write.ExpectedVersion == 0 ? stored is not null : stored != write.ExpectedVersion)
        {
            throw new StorageConflictException(threadId, write.ExpectedVersion, stored);
        }

        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = write.ExpectedVersion == 0 ? Sql.InsertThread : Sql.UpdateThread;
            command.Parameters.AddWithValue("$thread_id", threadId);
            command.Parameters.AddWithValue("$expected_version", write.ExpectedVersion);
            command.Parameters.AddWithValue("$version", newVersion);
            command.Parameters.AddWithValue("$state", SqliteValues.ToJson(write.State));
            command.Parameters.AddWithValue("$created_at", SqliteValues.Time(write.State.CreatedAt));
            command.Parameters.AddWithValue("$updated_at", SqliteValues.Time(write.State.UpdatedAt));
            var rows = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (rows != 1)
            {
                // Unreachable while the write lock is held; kept so a broken assumption cannot overwrite silently.
                throw new StorageConflictException(threadId, write.ExpectedVersion, stored);
            }
        }

        if (write.Messages.Count > 0)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Sql.UpsertMessage;
            command.Parameters.AddWithValue("$thread_id", threadId);
            var ordinal = command.Parameters.Add("$ordinal", SqliteType.Integer);
            var id = command.Parameters.Add("$id", SqliteType.Text);
            var body = command.Parameters.Add("$body", SqliteType.Text);
            foreach (var message in write.Messages)
            {
                ordinal.Value = message.Ordinal;
                id.Value = message.Id;
                body.Value = SqliteValues.ToJson(message);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        if (write.Runs.Count > 0)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Sql.UpsertRun;
            command.Parameters.AddWithValue("$thread_id", threadId);
            var id = command.Parameters.Add("$id", SqliteType.Text);
            var body = command.Parameters.Add("$body", SqliteType.Text);
            foreach (var run in write.Runs)
            {
                id.Value = run.Id;
                body.Value = SqliteValues.ToJson(run);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        transaction.Commit();
        return newVersion;
    }

    /// <summary>The thread store's SQL, all of it.</summary>
    private static class Sql
    {
        public const string ReadThread = "SELECT version, state FROM threads WHERE id = $thread_id;";

        public const string ReadVersion = "SELECT version FROM threads WHERE id = $thread_id;";

        public const string InsertThread = """
            INSERT INTO threads (id, version, state, created_at, updated_at)
            VALUES ($thread_id, $version, $state, $created_at, $updated_at);
            """;

        public const string UpdateThread = """
            UPDATE threads
            SET version = $version, state = $state, created_at = $created_at, updated_at = $updated_at
            WHERE id = $thread_id AND version = $expected_version;
            """;

        public const string UpsertMessage = """
            INSERT INTO messages (thread_id, ordinal, id, body)
            VALUES ($thread_id, $ordinal, $id, $body)
            ON CONFLICT (thread_id, ordinal) DO UPDATE SET id = excluded.id, body = excluded.body;
            """;

        public const string UpsertRun = """
            INSERT INTO runs (thread_id, id, body)
            VALUES ($thread_id, $id, $body)
            ON CONFLICT (thread_id, id) DO UPDATE SET body = excluded.body;
            """;

        public const string ReadMessages = """
            SELECT body FROM messages
            WHERE thread_id = $thread_id AND ordinal > $after_ordinal
            ORDER BY ordinal
            LIMIT $limit;
            """;

        public const string FindMessageOrdinal = "SELECT ordinal FROM messages WHERE thread_id = $thread_id AND id = $id;";

        public const string ReadRun = "SELECT body FROM runs WHERE thread_id = $thread_id AND id = $id;";
    }
}
