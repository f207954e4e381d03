using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Runtime;

namespace Conversations.Silo.Streams.InProcess;

/// <summary>
/// Writes appended events to the durable log in batches: whatever accumulated while the previous write ran goes
/// in the next one. A failed write is retried with backoff; events stay in memory until written.
/// </summary>
internal sealed class EventPersister : IAsyncDisposable
{
    private readonly Channel<(ThreadStreamChannel Channel, ThreadEvent Event)> _queue =
        Channel.CreateUnbounded<(ThreadStreamChannel, ThreadEvent)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IEventLog _log;
    private readonly int _batchSize;
    private readonly Action<ThreadStreamChannel, long> _onPersisted;
    private readonly Action<ThreadStreamChannel, int> _onFencedOff;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private long _enqueued;
    private long _written;
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public EventPersister(
        IEventLog log, int batchSize, Action<ThreadStreamChannel, long> onPersisted, Action<ThreadStreamChannel, int> onFencedOff, ILogger logger)
    {
        _log = log;
        _batchSize = batchSize;
        _onPersisted = onPersisted;
        _onFencedOff = onFencedOff;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public void Enqueue(ThreadStreamChannel channel, ThreadEvent threadEvent)
    {
        Interlocked.Increment(ref _enqueued);
        if (!_queue.Writer.TryWrite((channel, threadEvent)))
        {
            throw new ObjectDisposedException(nameof(EventPersister), "The stream is shutting down; the event was not accepted.");
        }
    }

    /// <summary>Completes when every event enqueued before the call has been written.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var target = Interlocked.Read(ref _enqueued);
        while (Interlocked.Read(ref _written) < target)
        {
            var progress = Volatile.Read(ref _progress);
            if (Interlocked.Read(ref _written) >= target)
            {
                break;
            }

            await progress.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false) != _loop)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task RunAsync()
    {
        var batch = new List<(ThreadStreamChannel Channel, ThreadEvent Event)>(_batchSize);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                while (batch.Count < _batchSize && reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                // One write per thread in the batch: each carries its activation's fencing token.
                foreach (var group in batch.GroupBy(b => b.Channel))
                {
                    var events = group.Select(b => b.Event).ToList();
                    if (await WriteWithRetryAsync(group.Key, events).ConfigureAwait(false))
                    {
                        _onPersisted(group.Key, events[^1].Sequence);
                    }
                    else
                    {
                        _onFencedOff(group.Key, events.Count);
                    }
                }

                Interlocked.Add(ref _written, batch.Count);
                batch.Clear();
                Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutdown gave up waiting for the log; what is still queued is lost from the durable log only.
        }
    }

    /// <summary>Writes one thread's events; false when the log refused them because the thread's lease moved on.</summary>
    private async Task<bool> WriteWithRetryAsync(ThreadStreamChannel channel, List<ThreadEvent> events)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                await _log.AppendAsync(events, channel.FencingToken, _stopping.Token).ConfigureAwait(false);
                return true;
            }
            catch (LeaseLostException)
            {
                return false;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.EventPersistFailed(_logger, ex, events.Count);
                await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }
}
