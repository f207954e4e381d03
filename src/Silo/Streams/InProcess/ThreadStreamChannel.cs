using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Streams.InProcess;

/// <summary>
/// The in-memory head of one thread's stream: it numbers events, keeps a tail of recent ones, and hands each
/// to every live subscriber without ever waiting for one. Events leave the tail only once persisted.
/// </summary>
internal sealed class ThreadStreamChannel(string threadId, StreamOptions options, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly List<ThreadEvent> _tail = [];
    private readonly List<Channel<ThreadEvent>> _subscribers = [];
    private long _last;
    private long _persisted;

    public string ThreadId { get; } = threadId;

    /// <summary>Holders: the grain activation that appends, and each subscriber. Guarded by the hub.</summary>
    public int References { get; set; }

    /// <summary>Loads the last stored sequence once; set by the hub.</summary>
    public Task Ready { get; set; } = Task.CompletedTask;

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

    public bool FullyPersisted
    {
        get
        {
            lock (_gate)
            {
                return _persisted >= _last;
            }
        }
    }

    public void Initialize(long lastStored)
    {
        lock (_gate)
        {
            _last = _persisted = lastStored;
        }
    }

    public ThreadEvent Append(ThreadEvent threadEvent, out int overflowed)
    {
        overflowed = 0;
        lock (_gate)
        {
            var sequenced = threadEvent with { Sequence = ++_last, CreatedAt = time.GetUtcNow() };
            _tail.Add(sequenced);
            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                if (!_subscribers[i].Writer.TryWrite(sequenced))
                {
                    _subscribers[i].Writer.TryComplete(new SubscriberOverflowException(ThreadId, sequenced.Sequence - 1));
                    _subscribers.RemoveAt(i);
                    overflowed++;
                }
            }

            return sequenced;
        }
    }

    public void MarkPersisted(long upTo)
    {
        lock (_gate)
        {
            _persisted = Math.Max(_persisted, upTo);
            var excess = _tail.Count - options.TailCapacity;
            if (excess <= 0)
            {
                return;
            }

            var removable = 0;
            while (removable < excess && _tail[removable].Sequence <= _persisted)
            {
                removable++;
            }

            _tail.RemoveRange(0, removable);
        }
    }

    /// <summary>
    /// Registers a live subscriber and, atomically with it, takes the tail events after <paramref name="after"/>;
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
}

/// <summary>Settings of the in-process streams.</summary>
public sealed class StreamOptions
{
    public const string SectionName = "Streams";

    /// <summary>How many recent events of a thread stay in memory for subscribers that join late.</summary>
    public int TailCapacity { get; set; } = 4096;

    /// <summary>How many events a slow subscriber may fall behind before it is dropped (it can resume).</summary>
    public int SubscriberBufferCapacity { get; set; } = 16384;

    /// <summary>How many events one write to the durable log carries at most.</summary>
    public int PersistBatchSize { get; set; } = 512;
}
