using System.Collections.Concurrent;
using System.Threading.Channels;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>
/// A silo's consumer of the run queue: takes the requests this silo may run (those of threads it holds, first, and
/// of threads nobody holds), runs each through the handler (the local thread grain's <c>SendMessageAsync</c>) and
/// stores the answer for the waiting gateway. Woken by <c>LISTEN run_requests</c>, and scans every
/// <see cref="RunQueueOptions.PollInterval"/> anyway.
/// </summary>
/// <remarks>
/// <para>Up to <see cref="RunQueueOptions.MaxConcurrency"/> requests run at once, each of a different thread: the scan
/// never takes a request while an earlier one of its thread is pending, so a thread's requests run one after
/// another in enqueue order, on whichever silos.</para>
/// <para>When the handler throws <see cref="RunQueueRetryException"/>, or the worker stops mid-call, the request is
/// put back in the queue. Any other failure leaves it taken: it is retaken, here or elsewhere, after
/// <see cref="RunQueueOptions.TakenTimeout"/>, like the requests of a silo that died.</para>
/// </remarks>
public sealed class RunQueueWorker : IHostedService, IAsyncDisposable
{
    private readonly PostgresRunQueue _queue;
    private readonly Func<string, SendMessage, CancellationToken, Task<SendMessageResult>> _handler;
    private readonly RunQueueOptions _options;
    private readonly ILogger _logger;
    private readonly PostgresNotificationListener _listener;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _backingOff = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    /// <summary>Creates a worker for silo <paramref name="siloId"/>.</summary>
    /// <param name="queue">The queue (shared with the process's other users).</param>
    /// <param name="siloId">This silo's id, as its thread leases name it.</param>
    /// <param name="handler">Runs one request: (thread id, message, cancellation) → the grain's answer.</param>
    /// <param name="options">Timing and concurrency; null for the defaults.</param>
    /// <param name="logger">A logger; null for none.</param>
    public RunQueueWorker(
        PostgresRunQueue queue,
        string siloId,
        Func<string, SendMessage, CancellationToken, Task<SendMessageResult>> handler,
        RunQueueOptions? options = null,
        ILogger<RunQueueWorker>? logger = null)
    {
        _queue = queue ?? throw new ArgumentNullException(nameof(queue));
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        SiloId = siloId;
        _handler = handler ?? throw new ArgumentNullException(nameof(handler));
        _options = (options ?? new RunQueueOptions()).Validated();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _listener = new PostgresNotificationListener(queue.Database, queue.Channels.Requests, _ => Wake(), Wake, _options, _logger);
    }

    /// <summary>The silo this worker takes requests for.</summary>
    public string SiloId { get; }

    /// <summary>True while the worker listens for new requests (tests).</summary>
    internal bool IsListening => _listener.IsListening;

    /// <summary>Starts listening and taking requests in the background.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        if (_loop is null)
        {
            _listener.Start();
            _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops taking requests, cancels the handler calls in flight (their requests are put back) and waits for them,
    /// or until <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await _listener.DisposeAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private void Wake() => _wake.Writer.TryWrite(true);

    private async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            var wanted = _options.MaxConcurrency - _running.Count;
            var took = 0;
            if (wanted > 0)
            {
                try
                {
                    var runs = await _queue.TakeAsync(SiloId, wanted, Skipped(), stopping).ConfigureAwait(false);
                    foreach (var run in runs)
                    {
                        Start(run, stopping);
                    }

                    took = runs.Count;
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    Log.RunQueueScanFailed(_logger, e, SiloId);
                }
            }

            if (wanted > 0 && took == wanted)
            {
                continue; // the scan was full: more may be waiting
            }

            try
            {
                using var poll = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                poll.CancelAfter(_options.PollInterval);
                await _wake.Reader.ReadAsync(poll.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                // The poll interval passed without a wake-up: scan anyway.
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await Task.WhenAll(_running.Values).ConfigureAwait(false);
    }

    // Requests not to take: those running here (a slow call must not be retaken by its own worker after
    // TakenTimeout) and those this worker put back a moment ago (the lease holder should get them).
    private string[] Skipped()
    {
        var now = Environment.TickCount64;
        foreach (var (runId, until) in _backingOff)
        {
            if (until <= now)
            {
                _backingOff.TryRemove(runId, out _);
            }
        }

        return [.. _running.Keys, .. _backingOff.Keys];
    }

    private void Start(TakenRun run, CancellationToken stopping)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _running[run.RunId] = Task.Run(async () =>
        {
            await started.Task.ConfigureAwait(false);
            await ProcessAsync(run, stopping).ConfigureAwait(false);
        }, CancellationToken.None);
        started.SetResult(); // only now, so the task is in _running before ProcessAsync can remove it
    }

    private async Task ProcessAsync(TakenRun run, CancellationToken stopping)
    {
        try
        {
            if (run.Attempt > 1)
            {
                Log.RunRetaken(_logger, run.ThreadId, run.RunId, run.Attempt, run.PreviousTaker ?? "(none)");
            }
            else
            {
                Log.RunTaken(_logger, run.ThreadId, run.RunId);
            }

            SendMessageResult result;
            try
            {
                result = await _handler(run.ThreadId, run.Message, stopping).ConfigureAwait(false);
            }
            catch (RunQueueRetryException e)
            {
                Log.RunPutBack(_logger, run.ThreadId, run.RunId, e.Message);
                _backingOff[run.RunId] = Environment.TickCount64 + (long)_options.PollInterval.TotalMilliseconds;
                await _queue.PutBackAsync(run.RunId, SiloId, CancellationToken.None).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                Log.RunPutBack(_logger, run.ThreadId, run.RunId, "the silo is stopping");
                await _queue.PutBackAsync(run.RunId, SiloId, CancellationToken.None).ConfigureAwait(false);
                return;
            }
            catch (Exception e)
            {
                Log.RunFailed(_logger, e, run.ThreadId, run.RunId, _options.TakenTimeout);
                return;
            }

            if (await _queue.CompleteAsync(run.RunId, result, CancellationToken.None).ConfigureAwait(false))
            {
                Log.RunDone(_logger, run.ThreadId, run.RunId);
            }
            else
            {
                Log.RunResultNotStored(_logger, run.ThreadId, run.RunId);
            }
        }
        catch (Exception e)
        {
            // PostgreSQL failed while storing the outcome: the request stays taken and is retaken after TakenTimeout.
            Log.RunOutcomeNotStored(_logger, e, run.ThreadId, run.RunId, _options.TakenTimeout);
        }
        finally
        {
            _running.TryRemove(run.RunId, out _);
            Wake(); // a slot is free, and the thread's next request may now be taken
        }
    }
}
