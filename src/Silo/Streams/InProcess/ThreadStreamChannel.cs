using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Streams.InProcess;

/// <summary>
/// The in-memory head of one thread's stream. It numbers events as they are appended, and delivers them to live
/// subscribers only once the durable log has them — so every event a client has seen survives a crash, sequence
/// numbers are never reused, and resuming from any id a client holds has no gap. It keeps a tail of recent events
/// for subscribers that join late, and never waits for a slow subscriber.
/// </summary>
internal sealed class ThreadStreamChannel(string threadId, StreamOptions options)
{
    private readonly Lock _gate = new();
    private readonly List<ThreadEvent> _pending = [];
    private readonly List<ThreadEvent> _tail = [];
    private readonly List<(Channel<ThreadEvent> Live, bool UntilProducerLeaves)> _subscribers = [];
    private bool _hasProducer;
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

    /// <summary>The fencing token the producing activation's events are persisted with.</summary>
    public long? FencingToken { get; private set; }

    public void AttachProducer(long? fencingToken)
    {
        lock (_gate)
        {
            _hasProducer = true;
            FencingToken = fencingToken;
        }
    }

    /// <summary>The producer left: subscribers that follow only the producer end once they have read what it appended.</summary>
    public void DetachProducer()
    {
        lock (_gate)
        {
            _hasProducer = false;
            EndProducerSubscribersLocked();
        }
    }

    /// <summary>
    /// The log refused this stream's events (another silo holds the thread now): what is pending is dropped,
    /// numbering returns to what is durable, and subscribers that follow the producer end so they look elsewhere.
    /// </summary>
    public void FenceOff()
    {
        lock (_gate)
        {
            _pending.Clear();
            _last = _persisted;
            EndProducerSubscribersLocked();
        }
    }

    private void EndProducerSubscribersLocked()
    {
        for (var i = _subscribers.Count - 1; i >= 0; i--)
        {
            if (_subscribers[i].UntilProducerLeaves)
            {
                _subscribers[i].Live.Writer.TryComplete();
                _subscribers.RemoveAt(i);
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

    /// <summary>Numbers an event; it is delivered when <see cref="MarkPersisted"/> says the log has it.</summary>
    public ThreadEvent Append(ThreadEvent threadEvent, DateTimeOffset now)
    {
        lock (_gate)
        {
            var sequenced = threadEvent with { Sequence = ++_last, CreatedAt = now };
            _pending.Add(sequenced);
            return sequenced;
        }
    }

    /// <summary>Delivers, in order, every pending event up to <paramref name="upTo"/>; returns how many subscribers overflowed.</summary>
    public int MarkPersisted(long upTo)
    {
        var overflowed = 0;
        lock (_gate)
        {
            var durable = 0;
            while (durable < _pending.Count && _pending[durable].Sequence <= upTo)
            {
                var next = _pending[durable++];
                _tail.Add(next);
                for (var i = _subscribers.Count - 1; i >= 0; i--)
                {
                    if (!_subscribers[i].Live.Writer.TryWrite(next))
                    {
                        _subscribers[i].Live.Writer.TryComplete(new SubscriberOverflowException(ThreadId, next.Sequence - 1));
                        _subscribers.RemoveAt(i);
                        overflowed++;
                    }
                }
            }

            _pending.RemoveRange(0, durable);
            _persisted = Math.Max(_persisted, upTo);
            if (_tail.Count > options.TailCapacity)
            {
                _tail.RemoveRange(0, _tail.Count - options.TailCapacity);
            }
        }

        return overflowed;
    }

    /// <summary>
    /// Registers a live subscriber and, atomically with it, takes the delivered tail events after
    /// <paramref name="after"/>; <paramref name="tailStart"/> is the first sequence held in memory (older ones
    /// come from the log). Every later event reaches the returned channel.
    /// </summary>
    public Channel<ThreadEvent> Subscribe(long after, bool untilProducerLeaves, out List<ThreadEvent> snapshot, out long tailStart)
    {
        var live = Channel.CreateBounded<ThreadEvent>(new BoundedChannelOptions(options.SubscriberBufferCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        lock (_gate)
        {
            tailStart = _tail.Count > 0 ? _tail[0].Sequence : _persisted + 1;
            snapshot = _tail.Where(e => e.Sequence > after).ToList();
            if (untilProducerLeaves && !_hasProducer)
            {
                // Nothing produces here: the subscriber gets what is stored, then its stream ends.
                live.Writer.TryComplete();
            }
            else
            {
                _subscribers.Add((live, untilProducerLeaves));
            }
        }

        return live;
    }

    public void Unsubscribe(Channel<ThreadEvent> live)
    {
        lock (_gate)
        {
            _subscribers.RemoveAll(s => ReferenceEquals(s.Live, live));
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
