using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;
using Conversations.Gateway.Telemetry;
using Conversations.Grains.Abstractions.Monitoring;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Streaming;

/// <summary>The thread streams as this gateway's subscribers see them.</summary>
public interface IThreadEventSource
{
    /// <summary>
    /// A thread's events with sequence greater than <paramref name="afterSequence"/>: those already appended, then live
    /// ones, in order with no duplicate, until cancelled. Throws <see cref="SubscriberOverflowException"/> when the
    /// subscriber falls too far behind (it can resume from the last sequence it received).
    /// </summary>
    IAsyncEnumerable<ThreadEvent> SubscribeAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default);
}

/// <summary>A subscriber read too slowly and was dropped so it would not hold up the others.</summary>
public sealed class SubscriberOverflowException(string threadId, long lastSequence)
    : Exception($"The subscriber of thread '{threadId}' fell too far behind; resume after sequence {lastSequence}.")
{
    public string ThreadId { get; } = threadId;

    /// <summary>The last sequence the subscriber was given (not necessarily the last it read).</summary>
    public long LastSequence { get; } = lastSequence;
}

/// <summary>
/// This gateway's live feeds: per watched thread, one streaming grain call (<see cref="IThreadGrain.WatchAsync"/>)
/// whatever the number of local subscribers, fanned out to each. A feed keeps a tail of recent events; a subscriber
/// that joins behind it is caught up with finite reads (<see cref="IThreadGrain.ReadEventsAsync"/>) first. When the
/// call ends or faults (the activation went away, its silo died), the feed calls again after the last sequence it
/// delivered: the grain comes back on a live silo and subscribers see no gap and no duplicate. No database here.
/// </summary>
public sealed class ThreadEventHub : IThreadEventSource, IAsyncDisposable
{
    private readonly IGrainFactory _grains;
    private readonly StreamingOptions _options;
    private readonly ILogger _logger;
    private readonly GatewayMetrics _metrics;
    private readonly Dictionary<string, Feed> _feeds = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;

    public ThreadEventHub(IGrainFactory grains, IOptions<StreamingOptions> options, ILogger<ThreadEventHub> logger, GatewayMetrics metrics)
    {
        _grains = grains;
        _options = options.Value;
        _logger = logger;
        _metrics = metrics;
        metrics.Observe(Counts);
    }

    /// <summary>Live subscribers and feeds now.</summary>
    private (int Subscribers, int Feeds) Counts()
    {
        lock (_gate)
        {
            return (_feeds.Values.Sum(f => f.SubscriberCount), _feeds.Count);
        }
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ThreadEvent> SubscribeAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default) =>
        JoinAsync(threadId, afterSequence, watcher: false, cancellationToken);

    /// <summary>
    /// As <see cref="SubscribeAsync"/>, for the ops dashboard: the same events, but the watcher is not counted among
    /// the thread's subscribers (<see cref="Watched"/>).
    /// </summary>
    public IAsyncEnumerable<ThreadEvent> WatchAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default) =>
        JoinAsync(threadId, afterSequence, watcher: true, cancellationToken);

    /// <summary>The threads this gateway feeds now, with their subscribers, watchers and the slowest subscriber's lag.</summary>
    public IReadOnlyList<WatchedThread> Watched()
    {
        lock (_gate)
        {
            return [.. _feeds.Values.Select(feed => feed.Describe()).OrderBy(t => t.ThreadId, StringComparer.Ordinal)];
        }
    }

    private async IAsyncEnumerable<ThreadEvent> JoinAsync(string threadId, long afterSequence, bool watcher, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        var subscriber = Channel.CreateBounded<ThreadEvent>(new BoundedChannelOptions(_options.SubscriberBufferCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        Feed feed;
        List<ThreadEvent> snapshot;
        long coveredAfter;
        lock (_gate)
        {
            if (!_feeds.TryGetValue(threadId, out feed!))
            {
                feed = new Feed(this, threadId, afterSequence);
                _feeds.Add(threadId, feed);
                feed.Start();
            }

            (snapshot, coveredAfter) = feed.Join(subscriber, afterSequence, watcher);
        }

        try
        {
            var last = afterSequence;
            // Behind the feed: catch up from the grain with finite reads, up to where the feed's tail begins.
            while (last < coveredAfter)
            {
                var page = await _grains.GetGrain<IThreadGrain>(threadId).ReadEventsAsync(last, coveredAfter, 500, cancellationToken);
                if (page.Count == 0)
                {
                    break;
                }

                foreach (var threadEvent in page)
                {
                    if (threadEvent.Sequence > last)
                    {
                        yield return threadEvent;
                        last = threadEvent.Sequence;
                    }
                }
            }

            foreach (var threadEvent in snapshot)
            {
                if (threadEvent.Sequence > last)
                {
                    yield return threadEvent;
                    last = threadEvent.Sequence;
                }
            }

            while (await subscriber.Reader.WaitToReadAsync(cancellationToken))
            {
                while (subscriber.Reader.TryRead(out var threadEvent))
                {
                    if (threadEvent.Sequence > last)
                    {
                        yield return threadEvent;
                        last = threadEvent.Sequence;
                    }
                }
            }
        }
        finally
        {
            Leave(feed, subscriber);
        }
    }

    /// <summary>
    /// Makes every feed call again now (after the last sequence it delivered) instead of waiting for its call to time
    /// out: the cluster connection lost a silo, and calls that silo was serving will never answer.
    /// </summary>
    public void Reconnect()
    {
        lock (_gate)
        {
            foreach (var feed in _feeds.Values)
            {
                feed.Reconnect();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Registered as itself and as IThreadEventSource: the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _stopping.CancelAsync();
        }
    }

    private void Leave(Feed feed, Channel<ThreadEvent> subscriber)
    {
        lock (_gate)
        {
            if (feed.Leave(subscriber) == 0 && _feeds.TryGetValue(feed.ThreadId, out var current) && ReferenceEquals(current, feed))
            {
                _feeds.Remove(feed.ThreadId);
                feed.Stop();
            }
        }
    }

    private void Forget(Feed feed)
    {
        lock (_gate)
        {
            if (_feeds.TryGetValue(feed.ThreadId, out var current) && ReferenceEquals(current, feed))
            {
                _feeds.Remove(feed.ThreadId);
            }
        }
    }

    /// <summary>One thread's upstream call and its local subscribers. Guarded by the hub's lock.</summary>
    private sealed class Feed(ThreadEventHub hub, string threadId, long startAfter)
    {
        private readonly List<ThreadEvent> _tail = [];
        private readonly List<Channel<ThreadEvent>> _subscribers = [];
        private readonly HashSet<Channel<ThreadEvent>> _watchers = [];
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(hub._stopping.Token);
        private CancellationTokenSource? _call;
        private long _coveredAfter = startAfter;
        private long _last = startAfter;

        public string ThreadId { get; } = threadId;

        /// <summary>Subscribers, the ops dashboard's watchers apart.</summary>
        public int SubscriberCount => _subscribers.Count - _watchers.Count;

        public void Start() => _ = RunAsync();

        /// <summary>Ends the current upstream call; the loop calls again at once.</summary>
        public void Reconnect()
        {
            try
            {
                _call?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That call had ended already.
            }
        }

        public void Stop()
        {
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The feed had ended by itself.
            }
        }

        /// <summary>Adds a subscriber; returns the tail it gets at once and the sequence after which the feed has every event.</summary>
        public (List<ThreadEvent> Snapshot, long CoveredAfter) Join(Channel<ThreadEvent> subscriber, long afterSequence, bool watcher)
        {
            _subscribers.Add(subscriber);
            if (watcher)
            {
                _watchers.Add(subscriber);
            }

            return (_tail.Where(e => e.Sequence > afterSequence).ToList(), _coveredAfter);
        }

        public int Leave(Channel<ThreadEvent> subscriber)
        {
            _subscribers.Remove(subscriber);
            _watchers.Remove(subscriber);
            subscriber.Writer.TryComplete();
            return _subscribers.Count;
        }

        /// <summary>Subscribers (watchers apart), watchers, the last sequence delivered, the slowest subscriber's unread events.</summary>
        public WatchedThread Describe() => new(
            ThreadId,
            _subscribers.Count - _watchers.Count,
            _watchers.Count,
            _last,
            _subscribers.Where(s => !_watchers.Contains(s)).Select(s => s.Reader.Count).DefaultIfEmpty(0).Max());

        private void Publish(ThreadEvent threadEvent)
        {
            lock (hub._gate)
            {
                if (threadEvent.Sequence <= _last)
                {
                    return;
                }

                _last = threadEvent.Sequence;
                _tail.Add(threadEvent);
                var capacity = hub._options.FeedTailCapacity;
                if (_tail.Count > capacity)
                {
                    var drop = _tail.Count - capacity;
                    _coveredAfter = _tail[drop - 1].Sequence;
                    _tail.RemoveRange(0, drop);
                }

                for (var i = _subscribers.Count - 1; i >= 0; i--)
                {
                    if (!_subscribers[i].Writer.TryWrite(threadEvent))
                    {
                        _subscribers[i].Writer.TryComplete(new SubscriberOverflowException(ThreadId, threadEvent.Sequence - 1));
                        _watchers.Remove(_subscribers[i]);
                        _subscribers.RemoveAt(i);
                    }
                    else if (!_watchers.Contains(_subscribers[i]))
                    {
                        hub._metrics.SubscriberLag(_subscribers[i].Reader.Count);
                    }
                }
            }
        }

        private void EndAll(Exception? error)
        {
            lock (hub._gate)
            {
                foreach (var subscriber in _subscribers)
                {
                    subscriber.Writer.TryComplete(error);
                }

                _subscribers.Clear();
                _watchers.Clear();
            }

            hub.Forget(this);
        }

        private async Task RunAsync()
        {
            var token = _stop.Token;
            var grain = hub._grains.GetGrain<IThreadGrain>(ThreadId);
            var failures = 0;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    using var call = CancellationTokenSource.CreateLinkedTokenSource(token);
                    lock (hub._gate)
                    {
                        _call = call;
                    }

                    try
                    {
                        await foreach (var threadEvent in grain.WatchAsync(_last, call.Token).ConfigureAwait(false))
                        {
                            Publish(threadEvent);
                            failures = 0;
                        }

                        // The activation ended (deactivated, or the thread does not exist): follow the next one. A
                        // thread whose stream is behind what was delivered is not this one: it was deleted and its id
                        // created again (sequences are never reused otherwise), so its watchers' stream ends too.
                        if (await grain.GetAsync(token).ConfigureAwait(false) is not { } thread || thread.LastSequence < _last)
                        {
                            EndAll(null);
                            return;
                        }
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (OperationCanceledException) when (call.IsCancellationRequested)
                    {
                        // Reconnect(): call again at once.
                        continue;
                    }
                    catch (Exception ex)
                    {
                        // The silo went away or the call failed: call again (after the last delivered sequence) until
                        // the cluster has placed the grain on a live silo.
                        failures++;
                        Log.FeedInterrupted(hub._logger, ex, ThreadId, _last, failures);
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 50 * (1 << Math.Min(failures, 6)))), token).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Stopped: the last subscriber left, or the gateway is stopping.
            }
            finally
            {
                _stop.Dispose();
            }
        }
    }
}
