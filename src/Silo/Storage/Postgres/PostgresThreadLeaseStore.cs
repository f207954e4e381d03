using Conversations.Silo.Runtime;
using Npgsql;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IThreadLeaseStore"/> over PostgreSQL: one row of <c>thread_leases</c> per thread that was ever leased,
/// never deleted, so its <c>token</c> only grows. Every statement is a single atomic statement judged by the
/// database's <c>now()</c>. Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
/// <remarks>
/// The fence (<see cref="Sql.Fence"/>) that fenced writes run takes a share lock on the lease row, and every change
/// of the row (acquire, renew, release) needs an exclusive row lock, so a takeover waits for a fenced write in
/// flight to commit, and a fenced write that waited for a takeover then finds the new token and fails.
/// </remarks>
public sealed class PostgresThreadLeaseStore(PostgresDatabase database) : IThreadLeaseStore
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task<ThreadLease?> TryAcquireAsync(string threadId, string siloId, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Acquire, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        command.Parameters.Add(Text("silo_id", siloId));
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("ttl", ttl));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new ThreadLease(threadId, siloId, reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1))
            : null;
    }

    /// <inheritdoc />
    /// <remarks>A lease that has expired cannot be renewed, even when no one took it over: its holder must acquire it again, which hands out a new token.</remarks>
    public async Task<bool> RenewAsync(ThreadLease lease, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        Validate(lease);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Renew, connection);
        AddHolder(command, lease);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("ttl", ttl));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async Task<bool> ReleaseAsync(ThreadLease lease, CancellationToken cancellationToken = default)
    {
        Validate(lease);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Release, connection);
        AddHolder(command, lease);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async Task<ThreadLease?> GetOwnerAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.Owner, connection);
        command.Parameters.Add(Text("thread_id", threadId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new ThreadLease(threadId, reader.GetString(0), reader.GetInt64(1), reader.GetFieldValue<DateTimeOffset>(2))
            : null;
    }

    private static void Validate(ThreadLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (string.IsNullOrEmpty(lease.ThreadId) || string.IsNullOrEmpty(lease.SiloId) || lease.Token < 1)
        {
            throw new ArgumentException("A lease needs a thread id, a silo id and a token of 1 or more.", nameof(lease));
        }
    }

    private static void AddHolder(NpgsqlCommand command, ThreadLease lease)
    {
        command.Parameters.Add(Text("thread_id", lease.ThreadId));
        command.Parameters.Add(Text("silo_id", lease.SiloId));
        command.Parameters.Add(new NpgsqlParameter<long>("token", lease.Token));
    }

    /// <summary>The lease SQL, all of it, including the fence that fenced writes of the thread store and event log run.</summary>
    internal static class Sql
    {
        // Free (no row), expired or released (expires_at <= now()): take it with the next token. Held by this silo
        // and live: keep the token and extend. Held by another silo and live: the WHERE leaves the row alone and
        // nothing is returned. In SET and WHERE, thread_leases.* is the row as it was before this statement.
        public const string Acquire = """
            INSERT INTO thread_leases AS l (thread_id, silo_id, token, acquired_at, expires_at)
            VALUES (@thread_id, @silo_id, 1, now(), now() + @ttl)
            ON CONFLICT (thread_id) DO UPDATE SET
                silo_id     = excluded.silo_id,
                token       = CASE WHEN l.expires_at > now() THEN l.token ELSE l.token + 1 END,
                acquired_at = CASE WHEN l.expires_at > now() THEN l.acquired_at ELSE now() END,
                expires_at  = excluded.expires_at
            WHERE l.expires_at <= now() OR l.silo_id = excluded.silo_id
            RETURNING token, expires_at;
            """;

        public const string Renew = """
            UPDATE thread_leases SET expires_at = now() + @ttl
            WHERE thread_id = @thread_id AND silo_id = @silo_id AND token = @token AND expires_at > now();
            """;

        // Expired from now on; the token stays, so the next holder's is higher.
        public const string Release = """
            UPDATE thread_leases SET expires_at = now()
            WHERE thread_id = @thread_id AND silo_id = @silo_id AND token = @token AND expires_at > now();
            """;

        public const string Owner = """
            SELECT silo_id, token, expires_at FROM thread_leases
            WHERE thread_id = @thread_id AND expires_at > now();
            """;

        /// <summary>
        /// Run first in a fenced write's transaction, with <c>@thread_id</c> and <c>@token</c>: returns a row, and
        /// share-locks the lease row until the transaction ends, only while the lease holds that token and is live.
        /// </summary>
        public const string Fence = FenceQuery + ";";

        /// <summary><see cref="Fence"/> without its semicolon, to be embedded in a statement (the event log's fenced append).</summary>
        public const string FenceQuery = """
            SELECT token FROM thread_leases
            WHERE thread_id = @thread_id AND token = @token AND expires_at > now()
            FOR SHARE
            """;
    }
}
