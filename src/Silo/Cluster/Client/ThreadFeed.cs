using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;
using Conversations.Silo.Streams;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// One watched thread in a gateway: the sequence delivered so far, a tail of recent events for subscribers that
/// join late, and the local subscribers' bounded buffers. Only the upstream loop delivers, in sequence order;
/// a subscriber whose buffer is full is dropped with <see cref="SubscriberOverflowException"/>.
/// </summary>
internal sealed class ThreadFeed(string threadId, ClusterClientOptions options, ThreadActivationSignal signal)
{
    private readonly Lock _gate = new();
    private readonly List<ThreadEvent> _tail = [];
    private readonly List<Channel<ThreadEvent>> _subscribers = [];
    private long _last;
    private int _stopped;

    public string ThreadId { get; } = threadId;

    public ThreadActivationSignal Signal { get; } = signal;

    /// <summary>Local subscribers; guarded by the source.</summary>
    public int References { get; set; }

    /// <summary>Reads the log's last sequence and starts the upstream; set by the source.</summary>
    public Task Ready { get; set; } = Task.CompletedTask;

    /// <summary>The upstream loop, once started.</summary>
    public Task Loop { get; set; } = Task.CompletedTask;

    public CancellationTokenSource Stopping { get; } = new();

    /// <summary>The last sequence delivered to subscribers (the upstream resumes after it).</summary>
    public long LastSequence
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    public void Initialize(long last)
    {
        lock (_gate)
        {
            _last = last;
        }
    }

    /// <summary>Delivers the next event (its sequence must follow the last); returns how many subscribers overflowed.</summary>
    public int Deliver(ThreadEvent threadEvent)
    {
        var overflowed = 0;
        lock (_gate)
        {
            if (threadEvent.Sequence != _last + 1)
            {
                throw new InvalidOperationException($"Event {threadEvent.Sequence} of thread '{ThreadId}' does not follow {_last}.");
            }

            _last = threadEvent.Sequence;
            _tail.Add(threadEvent);
            if (_tail.Count > options.TailCapacity)
            {
                _tail.RemoveRange(0, _tail.Count - options.TailCapacity);
            }

            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                if (!_subscribers[i].Writer.TryWrite(threadEvent))
                {
                    _subscribers[i].Writer.TryComplete(new SubscriberOverflowException(ThreadId, threadEvent.Sequence - 1));
                    _subscribers.RemoveAt(i);
                    overflowed++;
                }
            }
        }

        return overflowed;
    }

    /// <summary>
    /// Registers a subscriber and, atomically with it, takes the tail events after <paramref name="after"/>;
    /// <paramref name="tailStart"/> is the first sequence held in memory (older ones come from the log).
    /// </summary>
    public Channel<ThreadEvent> Subscribe(long after, out List<ThreadEvent> snapshot, out long tailStart)
    {
        var live = Channel.CreateBounded<ThreadEvent>(new BoundedChannelOptions(options.SubscriberBufferCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        lock (_gate)
        {
            tailStart = _tail.Count > 0 ? _tail[0].Sequence : _last + 1;
            snapshot = _tail.Where(e => e.Sequence > after).ToList();
            _subscribers.Add(live);
        }

        return live;
    }

    public void Unsubscribe(Channel<ThreadEvent> live)
    {
        lock (_gate)
        {
            _subscribers.Remove(live);
        }

        live.Writer.TryComplete();
    }

    /// <summary>Stops the upstream and ends every subscriber's stream.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await Stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Ready.ConfigureAwait(false);
            await Loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped while waiting.
        }
        catch (Exception) when (Ready.IsFaulted)
        {
            // The feed never started: nothing to wait for.
        }
        finally
        {
            Signal.Dispose();
            lock (_gate)
            {
                foreach (var subscriber in _subscribers)
                {
                    subscriber.Writer.TryComplete();
                }

                _subscribers.Clear();
            }
        }
    }
}
