using Conversations.Silo.Storage.Postgres;
using Npgsql;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// One <c>LISTEN thread_activated</c> connection per gateway process, shared by every upstream: a notification
/// wakes the upstream of the thread it names. The connection is re-opened when it drops, and every watcher is woken
/// then (a notification may have been missed while it was down). Started by the constructor.
/// </summary>
/// <remarks>
/// PostgreSQL channels are per database, not per schema: deployments that share a database between schemas also
/// share the channel (harmless: a wake-up for a thread nobody here watches is ignored, and a spurious one only
/// makes an upstream look at the lease again).
/// </remarks>
public sealed class ThreadActivationListener : IAsyncDisposable
{
    private static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(5);

    private readonly Dictionary<string, ThreadActivationSignal> _signals = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly PostgresDatabase _database;
    private readonly ILogger<ThreadActivationListener> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;

    public ThreadActivationListener(PostgresDatabase database, ILogger<ThreadActivationListener> logger)
    {
        _database = database ?? throw new ArgumentNullException(nameof(database));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Completes once the first <c>LISTEN</c> is in effect: notifications sent after it are seen.</summary>
    public Task Listening => _listening.Task;

    /// <summary>Starts watching a thread's activations; dispose the signal to stop. Several watchers of one thread share a signal.</summary>
    internal ThreadActivationSignal Watch(string threadId)
    {
        lock (_gate)
        {
            if (!_signals.TryGetValue(threadId, out var signal))
            {
                signal = new ThreadActivationSignal(this, threadId);
                _signals.Add(threadId, signal);
            }

            signal.Watchers++;
            return signal;
        }
    }

    internal void Unwatch(ThreadActivationSignal signal)
    {
        lock (_gate)
        {
            if (--signal.Watchers == 0)
            {
                _signals.Remove(signal.ThreadId);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
        WakeAll();
    }

    private async Task RunAsync()
    {
        var delay = TimeSpan.FromMilliseconds(200);
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _database.OpenConnectionAsync(token).ConfigureAwait(false);
                connection.Notification += OnNotification;
                await using (var listen = new NpgsqlCommand($"LISTEN {ClusterProtocol.ThreadActivatedChannel};", connection))
                {
                    await listen.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }

                _listening.TrySetResult();
                WakeAll(); // whatever was notified while not listening is found by looking again
                delay = TimeSpan.FromMilliseconds(200);
                while (true)
                {
                    if (!await connection.WaitAsync(KeepAliveInterval, token).ConfigureAwait(false))
                    {
                        // Idle: a round trip proves the connection (and so the LISTEN) is still there.
                        await using var ping = new NpgsqlCommand("SELECT 1;", connection);
                        await ping.ExecuteScalarAsync(token).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Log.ActivationListenerFailed(_logger, e, delay);
                WakeAll();
                try
                {
                    await Task.Delay(delay, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxReconnectDelay.Ticks));
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (e.Channel != ClusterProtocol.ThreadActivatedChannel)
        {
            return;
        }

        ThreadActivationSignal? signal;
        lock (_gate)
        {
            _signals.TryGetValue(e.Payload, out signal);
        }

        signal?.Set();
    }

    private void WakeAll()
    {
        List<ThreadActivationSignal> all;
        lock (_gate)
        {
            all = [.. _signals.Values];
        }

        foreach (var signal in all)
        {
            signal.Set();
        }
    }
}

/// <summary>
/// A thread's activation signal: a counter of wake-ups. Read <see cref="Version"/> before looking at the lease,
/// then <see cref="WaitAsync"/> for a later one, and no notification that arrives in between is missed.
/// </summary>
internal sealed class ThreadActivationSignal(ThreadActivationListener listener, string threadId) : IDisposable
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _version;

    public string ThreadId { get; } = threadId;

    /// <summary>Guarded by the listener.</summary>
    public int Watchers { get; set; }

    public long Version
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    public void Set()
    {
        TaskCompletionSource woken;
        lock (_gate)
        {
            _version++;
            woken = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        woken.TrySetResult();
    }

    /// <summary>Completes when the signal is set after <paramref name="seen"/>, or after <paramref name="timeout"/>; true when it was set.</summary>
    public async Task<bool> WaitAsync(long seen, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task next;
        lock (_gate)
        {
            if (_version > seen)
            {
                return true;
            }

            next = _next.Task;
        }

        try
        {
            await next.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public void Dispose() => listener.Unwatch(this);
}
