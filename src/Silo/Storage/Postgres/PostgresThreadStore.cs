using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Npgsql;
using NpgsqlTypes;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IThreadStore"/> over PostgreSQL: a thread's state is one row of <c>threads</c> with a version, its
/// messages and runs are rows of <c>messages</c> and <c>runs</c> holding <c>ContractJson</c> bodies as <c>jsonb</c>.
/// A write is one transaction that checks the fence (when given) and the version before anything else is written,
/// so concurrent writers of a thread, on this silo or another, are serialised by the row lock and all but one see
/// <see cref="StorageConflictException"/>; a writer whose lease was taken over sees <see cref="LeaseLostException"/>.
/// Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
/// <remarks>
/// <c>jsonb</c> keeps values, not text: the keys of a stored object (a thread's metadata, say) come back in
/// PostgreSQL's order (shorter keys first), not in the order they were written.
/// </remarks>
public sealed class PostgresThreadStore(PostgresDatabase database) : IThreadStore
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task<VersionedThreadState?> ReadAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.ReadThread, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var version = reader.GetInt64(0);
        var state = FromJson<ThreadGrainState>(reader.GetString(1), $"thread '{threadId}'");
        return new VersionedThreadState(state, version);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(
        string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterOrdinal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.ReadMessages, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        command.Parameters.Add(new NpgsqlParameter<int>("after_ordinal", afterOrdinal));
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var messages = new List<ThreadMessage>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            messages.Add(FromJson<ThreadMessage>(reader.GetString(0), $"a message of thread '{threadId}'"));
        }

        return messages;
    }

    /// <inheritdoc />
    public async Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(messageId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.FindMessageOrdinal, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        command.Parameters.Add(Text("id", messageId));
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int ordinal ? ordinal : null;
    }

    /// <inheritdoc />
    public async Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(runId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.ReadRun, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        command.Parameters.Add(Text("id", runId));
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return result is string json ? FromJson<RunRecord>(json, $"run '{runId}' of thread '{threadId}'") : null;
    }

    /// <inheritdoc />
    /// <remarks>
    /// With a <see cref="ThreadWrite.FencingToken"/>, the transaction first takes a share lock on the thread's lease
    /// row if it still holds that token and has not expired (by the database's clock), and throws
    /// <see cref="LeaseLostException"/> otherwise. The share lock makes a takeover of the lease wait until this write
    /// has committed, so the new holder reads it; a fence failure is reported before a version conflict.
    /// Messages are upserted by ordinal: a message stored at the same ordinal is replaced (its id may not move to
    /// another ordinal: that violates <c>UNIQUE (thread_id, id)</c>, throws <see cref="PostgresException"/> and
    /// changes nothing). Runs are upserted by id. Each of the two is one statement over arrays.
    /// </remarks>
    public async Task<long> WriteAsync(ThreadWrite write, CancellationToken cancellationToken = default)
    {
        Validate(write);
        var threadId = write.State.Id;
        var newVersion = write.ExpectedVersion + 1;

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        if (write.FencingToken is { } token)
        {
            await using var fence = new NpgsqlCommand(PostgresThreadLeaseStore.Sql.Fence, connection, transaction);
            fence.Parameters.Add(Text("thread_id", threadId));
            fence.Parameters.Add(new NpgsqlParameter<long>("token", token));
            if (await fence.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
            {
                throw new LeaseLostException(threadId, token); // disposing the transaction rolls it back
            }
        }

        // INSERT … ON CONFLICT DO NOTHING and UPDATE … WHERE version = expected each wait for a concurrent writer's
        // row lock and then see its committed row, so of two writers with the same expected version one changes the
        // row and the other changes nothing.
        await using (var command = new NpgsqlCommand(write.ExpectedVersion == 0 ? Sql.InsertThread : Sql.UpdateThread, connection, transaction))
        {
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(new NpgsqlParameter<long>("expected_version", write.ExpectedVersion));
            command.Parameters.Add(new NpgsqlParameter<long>("version", newVersion));
            command.Parameters.Add(Jsonb("state", ToJson(write.State)));
            command.Parameters.Add(new NpgsqlParameter<DateTime>("created_at", Time(write.State.CreatedAt)));
            command.Parameters.Add(new NpgsqlParameter<DateTime>("updated_at", Time(write.State.UpdatedAt)));
            if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                await using var read = new NpgsqlCommand(Sql.ReadVersion, connection, transaction);
                read.Parameters.Add(Text("thread_id", threadId));
                var actual = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
                throw new StorageConflictException(threadId, write.ExpectedVersion, actual);
            }
        }

        if (write.Messages.Count > 0)
        {
            await using var command = new NpgsqlCommand(Sql.UpsertMessages, connection, transaction);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(Array("ordinals", NpgsqlDbType.Integer, write.Messages.Select(m => m.Ordinal).ToArray()));
            command.Parameters.Add(Array("ids", NpgsqlDbType.Text, write.Messages.Select(m => m.Id).ToArray()));
            command.Parameters.Add(Array("bodies", NpgsqlDbType.Jsonb, write.Messages.Select(ToJson).ToArray()));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (write.Runs.Count > 0)
        {
            await using var command = new NpgsqlCommand(Sql.UpsertRuns, connection, transaction);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(Array("ids", NpgsqlDbType.Text, write.Runs.Select(r => r.Id).ToArray()));
            command.Parameters.Add(Array("bodies", NpgsqlDbType.Jsonb, write.Runs.Select(ToJson).ToArray()));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return newVersion;
    }

    private static void Validate(ThreadWrite write)
    {
        StorageArguments.ValidateWrite(write);
        if (write.FencingToken < 1)
        {
            throw new ArgumentException($"FencingToken must be 1 or more, not {write.FencingToken}.", nameof(write));
        }
    }

    /// <summary>The thread store's SQL, all of it (the fence is the lease store's).</summary>
    private static class Sql
    {
        public const string ReadThread = "SELECT version, state::text FROM threads WHERE id = @thread_id;";

        public const string ReadVersion = "SELECT version FROM threads WHERE id = @thread_id;";

        public const string InsertThread = """
            INSERT INTO threads (id, version, state, created_at, updated_at)
            VALUES (@thread_id, @version, @state, @created_at, @updated_at)
            ON CONFLICT (id) DO NOTHING;
            """;

        public const string UpdateThread = """
            UPDATE threads
            SET version = @version, state = @state, created_at = @created_at, updated_at = @updated_at
            WHERE id = @thread_id AND version = @expected_version;
            """;

        public const string UpsertMessages = """
            INSERT INTO messages (thread_id, ordinal, id, body)
            SELECT @thread_id, m.ordinal, m.id, m.body
            FROM unnest(@ordinals, @ids, @bodies) AS m (ordinal, id, body)
            ON CONFLICT (thread_id, ordinal) DO UPDATE SET id = excluded.id, body = excluded.body;
            """;

        public const string UpsertRuns = """
            INSERT INTO runs (thread_id, id, body)
            SELECT @thread_id, r.id, r.body
            FROM unnest(@ids, @bodies) AS r (id, body)
            ON CONFLICT (thread_id, id) DO UPDATE SET body = excluded.body;
            """;

        public const string ReadMessages = """
            SELECT body::text FROM messages
            WHERE thread_id = @thread_id AND ordinal > @after_ordinal
            ORDER BY ordinal
            LIMIT @limit;
            """;

        public const string FindMessageOrdinal = "SELECT ordinal FROM messages WHERE thread_id = @thread_id AND id = @id;";

        public const string ReadRun = "SELECT body::text FROM runs WHERE thread_id = @thread_id AND id = @id;";
    }
}
