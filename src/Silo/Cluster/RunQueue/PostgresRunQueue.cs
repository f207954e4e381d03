using System.Text.Json;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>
/// The run queue in PostgreSQL (table <c>run_requests</c>): gateways enqueue <see cref="SendMessage"/>s, wait for
/// their results and cancel requests no silo has taken yet; <see cref="RunQueueWorker"/>s on the silos take and run
/// them. Thread-safe and meant to be a singleton per process: all waiters share one listening connection.
/// </summary>
/// <remarks>
/// A waiter is woken by <c>LISTEN run_request_done</c> and re-reads its row; it also re-reads it whenever the listener
/// (re)starts and every <see cref="RunQueueOptions.PollInterval"/>, so a lost notification delays it, never hangs it.
/// </remarks>
public sealed class PostgresRunQueue : IAsyncDisposable
{
    // jsonb stores object keys in its own order (shortest first), so the "kind" discriminator of a stored result is
    // not necessarily first when read back.
    private static readonly JsonSerializerOptions ResultJson = new(ContractJson.Options) { AllowOutOfOrderMetadataProperties = true };

    private readonly ILogger _logger;
    private readonly Lock _waitersLock = new();
    private readonly Dictionary<string, List<Waiter>> _waiters = new(StringComparer.Ordinal);
    private readonly PostgresNotificationListener _doneListener;

    /// <summary>Creates the queue over <paramref name="database"/> (migrated: schema version 5 or later).</summary>
    public PostgresRunQueue(PostgresDatabase database, RunQueueOptions? options = null, ILogger<PostgresRunQueue>? logger = null)
    {
        Database = database ?? throw new ArgumentNullException(nameof(database));
        Options = (options ?? new RunQueueOptions()).Validated();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Channels = RunQueueChannels.For(database.Schema);
        _doneListener = new PostgresNotificationListener(database, Channels.Done, WakeWaiters, WakeAllWaiters, Options, _logger);
    }

    internal PostgresDatabase Database { get; }

    internal RunQueueOptions Options { get; }

    internal RunQueueChannels Channels { get; }

    /// <summary>How many waiters are registered (tests).</summary>
    internal int WaiterCount
    {
        get
        {
            lock (_waitersLock)
            {
                return _waiters.Values.Sum(w => w.Count);
            }
        }
    }

    /// <summary>The shared listener (tests).</summary>
    internal PostgresNotificationListener DoneListener => _doneListener;

    /// <summary>
    /// Enqueues <paramref name="message"/> for <paramref name="threadId"/> and notifies the silos, in one transaction.
    /// The message must carry its <see cref="SendMessage.RunId"/>: it is the request's key. Returns false, and changes
    /// nothing, when a request with this run id exists already (a retried enqueue): wait for that one's result.
    /// </summary>
    public async Task<bool> EnqueueAsync(string threadId, SendMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentNullException.ThrowIfNull(message);
        if (string.IsNullOrEmpty(message.RunId))
        {
            throw new ArgumentException("A queued SendMessage needs its RunId.", nameof(message));
        }

        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.Enqueue, connection);
        command.Parameters.Add(Text("run_id", message.RunId));
        command.Parameters.Add(Text("thread_id", threadId));
        command.Parameters.Add(Jsonb("payload", ToJson(message)));
        command.Parameters.Add(Text("channel", Channels.Requests));
        return await CountRowsAsync(command, cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// Waits until the request <paramref name="runId"/> is done or cancelled and returns how it ended;
    /// <see cref="RunQueueOutcome.NotFound"/> at once for a run id never enqueued. Returns at once for a request that
    /// has already ended. Only <paramref name="cancellationToken"/> ends the wait otherwise.
    /// </summary>
    public async Task<RunQueueOutcome> WaitForResultAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);

        // Registered before the first read: a notification after that read wakes this waiter; a result stored before
        // it is found by it; and if the listener is not listening yet, it wakes every waiter once it is.
        using var waiter = Register(runId);
        _doneListener.Start();
        while (true)
        {
            if (await ReadOutcomeAsync(runId, cancellationToken).ConfigureAwait(false) is { } outcome)
            {
                return outcome;
            }

            await waiter.WaitAsync(Options.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Cancels the request <paramref name="runId"/> if no silo has taken it yet: it will never run, and its waiters get
    /// <see cref="RunQueueOutcome.Cancelled"/>. Returns false when it was taken (cancel the run on its thread instead),
    /// has ended, or does not exist.
    /// </summary>
    public async Task<bool> TryCancelQueuedAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);

        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.CancelQueued, connection);
        command.Parameters.Add(Text("run_id", runId));
        command.Parameters.Add(Text("channel", Channels.Done));
        return await CountRowsAsync(command, cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>Stops the shared listener. Waiters still waiting fall back to polling.</summary>
    public ValueTask DisposeAsync() => _doneListener.DisposeAsync();

    /// <summary>Takes up to <paramref name="limit"/> requests for <paramref name="siloId"/> (see <see cref="RunQueueSql.Take"/>).</summary>
    internal async Task<IReadOnlyList<TakenRun>> TakeAsync(string siloId, int limit, string[] skip, CancellationToken cancellationToken)
    {
        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.Take, connection);
        command.Parameters.Add(Text("silo_id", siloId));
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("taken_timeout", Options.TakenTimeout));
        command.Parameters.Add(Array("skip", NpgsqlDbType.Text, skip));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var taken = new List<TakenRun>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var runId = reader.GetString(0);
            taken.Add(new TakenRun(
                runId,
                reader.GetString(1),
                FromJson<SendMessage>(reader.GetString(2), $"run request {runId}"),
                reader.GetInt32(3),
                reader.IsDBNull(4) ? null : reader.GetString(4)));
        }

        return taken;
    }

    /// <summary>Stores the result of a pending request and notifies its waiters; false when it was no longer pending.</summary>
    internal async Task<bool> CompleteAsync(string runId, SendMessageResult result, CancellationToken cancellationToken)
    {
        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.Complete, connection);
        command.Parameters.Add(Text("run_id", runId));
        command.Parameters.Add(Jsonb("result", ToJson(result)));
        command.Parameters.Add(Text("channel", Channels.Done));
        return await CountRowsAsync(command, cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>Makes a request this silo took queued again and wakes the workers; false when this silo no longer held it.</summary>
    internal async Task<bool> PutBackAsync(string runId, string siloId, CancellationToken cancellationToken)
    {
        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.PutBack, connection);
        command.Parameters.Add(Text("run_id", runId));
        command.Parameters.Add(Text("silo_id", siloId));
        command.Parameters.Add(Text("channel", Channels.Requests));
        return await CountRowsAsync(command, cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<RunQueueOutcome?> ReadOutcomeAsync(string runId, CancellationToken cancellationToken)
    {
        await using var connection = await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RunQueueSql.ReadOutcome, connection);
        command.Parameters.Add(Text("run_id", runId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return new RunQueueOutcome.NotFound();
        }

        return reader.GetString(0) switch
        {
            "done" => new RunQueueOutcome.Done(
                JsonSerializer.Deserialize<SendMessageResult>(reader.GetString(1), ResultJson)
                ?? throw new InvalidDataException($"The stored result of run request {runId} is null.")),
            "cancelled" => new RunQueueOutcome.Cancelled(),
            _ => null,
        };
    }

    // The statements that notify return one row per changed row; SELECT pg_notify(…) has no other row count.
    private static async Task<int> CountRowsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows++;
        }

        return rows;
    }

    private Waiter Register(string runId)
    {
        var waiter = new Waiter(this, runId);
        lock (_waitersLock)
        {
            if (!_waiters.TryGetValue(runId, out var list))
            {
                _waiters[runId] = list = [];
            }

            list.Add(waiter);
        }

        return waiter;
    }

    private void Unregister(Waiter waiter)
    {
        lock (_waitersLock)
        {
            if (_waiters.TryGetValue(waiter.RunId, out var list) && list.Remove(waiter) && list.Count == 0)
            {
                _waiters.Remove(waiter.RunId);
            }
        }
    }

    private void WakeWaiters(string runId)
    {
        lock (_waitersLock)
        {
            if (_waiters.TryGetValue(runId, out var list))
            {
                list.ForEach(w => w.Wake());
            }
        }
    }

    private void WakeAllWaiters()
    {
        lock (_waitersLock)
        {
            foreach (var list in _waiters.Values)
            {
                list.ForEach(w => w.Wake());
            }
        }
    }

    /// <summary>One waiting call: a wake-up signal that a notification (or the listener's start) sets.</summary>
    private sealed class Waiter(PostgresRunQueue queue, string runId) : IDisposable
    {
        private readonly SemaphoreSlim _signal = new(0, 1);

        public string RunId { get; } = runId;

        public void Wake()
        {
            try
            {
                _signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already set: one wake-up is as good as two. (Wake runs under the waiters' lock, and Dispose
                // unregisters under it first, so the semaphore is never disposed here.)
            }
        }

        public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);

        public void Dispose()
        {
            queue.Unregister(this);
            _signal.Dispose();
        }
    }
}

/// <summary>A request a worker took: what to run, and how many times it has been taken (1 the first time).</summary>
internal sealed record TakenRun(string RunId, string ThreadId, SendMessage Message, int Attempt, string? PreviousTaker);
