using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;
using Microsoft.Extensions.Logging;

namespace Conversations.Grains.Threads;

/// <summary>
/// The head of one thread's event stream inside its grain activation. It numbers events, hands them to watchers at
/// once (no storage commit on a token's path), keeps a tail of recent events for watchers that join late, and writes
/// events to the <see cref="IEventLog"/> in batches behind the live path. Sequences come from a range the grain has
/// reserved durably beforehand (<see cref="ReservedThrough"/>), so a crash that loses unwritten events never lets a
/// later activation reuse a number a client has seen.
/// </summary>
/// <remarks>
/// Not thread-safe: every member runs on the grain's scheduler, one piece at a time, like the rest of the grain.
/// </remarks>
internal sealed class ThreadEventStream(string threadId, IEventLog log, ThreadStreamOptions options, TimeProvider time, ILogger logger)
{
    private readonly List<ThreadEvent> _tail = [];
    private readonly List<ThreadEvent> _unwritten = [];
    private readonly List<Channel<ThreadEvent>> _watchers = [];
    private Task _writing = Task.CompletedTask;
    private long _lastWritten;
    private bool _closed;
    private bool _watchesEnded;

    /// <summary>The sequence the next event gets.</summary>
    public long NextSequence { get; private set; } = 1;

    /// <summary>The last sequence of the durably reserved range; <see cref="AppendAsync"/> reserves more past it.</summary>
    public long ReservedThrough { get; private set; }

    /// <summary>The sequence of the last event appended (0 for none).</summary>
    public long LastSequence => NextSequence - 1;

    /// <summary>Reserves sequences durably (the grain's state write); returns the new last reserved sequence.</summary>
    public Func<long, Task<long>>? Reserve { get; set; }

    /// <summary>Starts numbering after everything earlier activations used or reserved.</summary>
    public void Start(long lastStored, long reserved)
    {
        _lastWritten = lastStored;
        NextSequence = Math.Max(lastStored, reserved) + 1;
        ReservedThrough = NextSequence - 1;
    }

    /// <summary>Notes a range reserved by a state write the grain made for other reasons too.</summary>
    public void Reserved(long through) => ReservedThrough = Math.Max(ReservedThrough, through);

    /// <summary>The reservation a state write should carry so the next <paramref name="count"/> events need no write of their own.</summary>
    public long ReservationFor(int count) => Math.Max(ReservedThrough, NextSequence - 1 + Math.Max(count, options.ReservationBlock));

    /// <summary>
    /// Numbers <paramref name="threadEvent"/>, delivers it to every watcher and queues it for the log. Waits only when
    /// the reserved range is used up (one state write per <see cref="ThreadStreamOptions.ReservationBlock"/> events).
    /// </summary>
    public async ValueTask<ThreadEvent> AppendAsync(ThreadEvent threadEvent)
    {
        var appended = await NumberAsync(threadEvent);
        Deliver(appended);
        return appended;
    }

    /// <summary>
    /// Like <see cref="AppendAsync"/>, but the event (and every one before it) is written to the log before any
    /// watcher sees it, for the events that end a run: a client that resumes after a crash always finds how its
    /// run ended. When the log does not answer within <see cref="ThreadStreamOptions.DurableWriteTimeout"/> the event is
    /// delivered anyway (and written when the log is back): watchers are never left without the end.
    /// </summary>
    public async ValueTask<ThreadEvent> AppendDurableAsync(ThreadEvent threadEvent)
    {
        var appended = await NumberAsync(threadEvent);
        _unwritten.Add(appended);
        try
        {
            await FlushAsync(CancellationToken.None).WaitAsync(options.DurableWriteTimeout, time);
        }
        catch (TimeoutException)
        {
            Log.DurableEventDelivered(logger, threadId, appended.Sequence);
        }

        Deliver(appended, queued: true);
        return appended;
    }

    private async ValueTask<ThreadEvent> NumberAsync(ThreadEvent threadEvent)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (NextSequence > ReservedThrough)
        {
            var reserve = Reserve ?? throw new InvalidOperationException("No sequence range is reserved.");
            ReservedThrough = await reserve(ReservationFor(1));
        }

        return threadEvent with { Sequence = NextSequence++, CreatedAt = time.GetUtcNow() };
    }

    private void Deliver(ThreadEvent appended, bool queued = false)
    {
        _tail.Add(appended);
        TrimTail();
        for (var i = _watchers.Count - 1; i >= 0; i--)
        {
            if (!_watchers[i].Writer.TryWrite(appended))
            {
                // Too far behind: its enumeration ends and the watcher resumes from the last sequence it got.
                _watchers[i].Writer.TryComplete();
                _watchers.RemoveAt(i);
            }
        }

        if (!queued)
        {
            _unwritten.Add(appended);
        }

        if (_writing.IsCompleted && _unwritten.Count > 0)
        {
            _writing = WriteAsync();
        }
    }

    /// <summary>
    /// Events after <paramref name="afterSequence"/>: from the log, then the in-memory tail, then live, each once
    /// and in increasing order, until the stream closes or <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async IAsyncEnumerable<ThreadEvent> WatchAsync(long afterSequence, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_watchesEnded)
        {
            yield break;
        }

        var live = Channel.CreateBounded<ThreadEvent>(new BoundedChannelOptions(options.WatcherBufferCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            // Not DropWrite: with it TryWrite says yes and drops the event, and a watcher that falls behind (a
            // gateway's feed during a burst) would skip events without knowing. With Wait, TryWrite says no when the
            // buffer is full, and Deliver ends that watcher, which calls again after the last event it got.
            FullMode = BoundedChannelFullMode.Wait,
        });
        _watchers.Add(live);
        var snapshot = _tail.Where(e => e.Sequence > afterSequence).ToList();
        var tailStart = _tail.Count > 0 ? _tail[0].Sequence : NextSequence;
        try
        {
            var last = afterSequence;
            if (last + 1 < tailStart)
            {
                await foreach (var stored in log.ReadAsync(threadId, last, tailStart - 1, cancellationToken))
                {
                    if (stored.Sequence > last)
                    {
                        yield return stored;
                        last = stored.Sequence;
                    }
                }
            }

            foreach (var recent in snapshot)
            {
                if (recent.Sequence > last)
                {
                    yield return recent;
                    last = recent.Sequence;
                }
            }

            while (await live.Reader.WaitToReadAsync(cancellationToken))
            {
                while (live.Reader.TryRead(out var next))
                {
                    if (next.Sequence > last)
                    {
                        yield return next;
                        last = next.Sequence;
                    }
                }
            }
        }
        finally
        {
            _watchers.Remove(live);
        }
    }

    /// <summary>Up to <paramref name="limit"/> events after <paramref name="afterSequence"/> through <paramref name="throughSequence"/>: from the log, then the tail.</summary>
    public async Task<List<ThreadEvent>> ReadAsync(long afterSequence, long throughSequence, int limit, CancellationToken cancellationToken)
    {
        var snapshot = _tail.Where(e => e.Sequence > afterSequence && e.Sequence <= throughSequence).ToList();
        var tailStart = _tail.Count > 0 ? _tail[0].Sequence : NextSequence;
        var read = new List<ThreadEvent>();
        var last = afterSequence;
        if (last + 1 < tailStart)
        {
            await foreach (var stored in log.ReadAsync(threadId, last, Math.Min(throughSequence, tailStart - 1), cancellationToken))
            {
                read.Add(stored);
                last = stored.Sequence;
                if (read.Count == limit)
                {
                    return read;
                }
            }
        }

        read.AddRange(snapshot.Where(e => e.Sequence > last).Take(limit - read.Count));
        return read;
    }

    /// <summary>Writes every event appended so far to the log; retries while the log is unavailable, until cancelled.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_unwritten.Count > 0 || !_writing.IsCompleted)
        {
            if (_writing.IsCompleted)
            {
                _writing = WriteAsync();
            }

            await _writing.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Ends every watcher's enumeration normally, and any that starts after at once (they call again and reach the
    /// next activation); events are still numbered, kept and written.
    /// </summary>
    public void EndWatches()
    {
        _watchesEnded = true;
        foreach (var watcher in _watchers)
        {
            watcher.Writer.TryComplete();
        }

        _watchers.Clear();
    }

    /// <summary>Ends every watch (<see cref="EndWatches"/>) and takes no more events.</summary>
    public void Close()
    {
        _closed = true;
        EndWatches();
    }

    /// <summary>Keeps the tail within its capacity, but never drops an event the log does not have yet.</summary>
    private void TrimTail()
    {
        var excess = _tail.Count - options.TailCapacity;
        var drop = 0;
        while (drop < excess && _tail[drop].Sequence <= _lastWritten)
        {
            drop++;
        }

        if (drop > 0)
        {
            _tail.RemoveRange(0, drop);
        }
    }

    private async Task WriteAsync()
    {
        var failures = 0;
        while (_unwritten.Count > 0)
        {
            var batch = _unwritten.Take(options.WriteBatchSize).ToList();
            try
            {
                await log.AppendAsync(batch, CancellationToken.None);
                _unwritten.RemoveRange(0, batch.Count);
                _lastWritten = batch[^1].Sequence;
                failures = 0;
                TrimTail();
            }
            catch (Exception ex)
            {
                // Watchers already have these events; the log gets them when it is back. Nothing is dropped.
                failures++;
                Log.EventsNotWritten(logger, ex, threadId, batch.Count, failures);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures, 6)))), time);
            }
        }
    }
}

/// <summary>Settings of thread event streams (section <c>Streams</c>).</summary>
public sealed class ThreadStreamOptions
{
    public const string SectionName = "Streams";

    /// <summary>How many recent events of a thread stay in memory for watchers that join late.</summary>
    public int TailCapacity { get; set; } = 4096;

    /// <summary>How many events a watcher may fall behind before its enumeration ends (it resumes from where it was).</summary>
    public int WatcherBufferCapacity { get; set; } = 16384;

    /// <summary>How many events one write to the log carries at most.</summary>
    public int WriteBatchSize { get; set; } = 512;

    /// <summary>How many sequences one reservation (a state write) covers.</summary>
    public int ReservationBlock { get; set; } = 1024;

    /// <summary>How long the end of a run waits for the log before it is delivered anyway.</summary>
    public TimeSpan DurableWriteTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
