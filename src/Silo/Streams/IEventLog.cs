using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Streams;

/// <summary>
/// The durable side of thread streams: events persisted in batches so a subscriber can resume from any sequence
/// after the live buffer has moved on, after a restart, or on another node.
/// </summary>
public interface IEventLog
{
    /// <summary>Persists a batch of sequenced events. Appending an event already stored (same thread and sequence) is a no-op.</summary>
    Task AppendAsync(IReadOnlyList<ThreadEvent> events, CancellationToken cancellationToken = default);

    /// <summary>
    /// Persists a batch of sequenced events of one thread, fenced by the thread's lease: when
    /// <paramref name="fencingToken"/> is given, a log shared between silos appends only while the thread's lease
    /// holds that token and has not expired, and otherwise throws
    /// <see cref="Grains.Abstractions.Runtime.LeaseLostException"/> and appends nothing. A single-process log may
    /// ignore the token. A null token is the same as <see cref="AppendAsync(IReadOnlyList{ThreadEvent}, CancellationToken)"/>.
    /// </summary>
    Task AppendAsync(IReadOnlyList<ThreadEvent> events, long? fencingToken, CancellationToken cancellationToken = default);

    /// <summary>Streams a thread's events with sequence greater than <paramref name="afterSequence"/> and at most <paramref name="toSequence"/>, in order.</summary>
    IAsyncEnumerable<ThreadEvent> ReadAsync(string threadId, long afterSequence, long toSequence = long.MaxValue, CancellationToken cancellationToken = default);

    /// <summary>The highest sequence stored for a thread; 0 for none.</summary>
    Task<long> GetLastSequenceAsync(string threadId, CancellationToken cancellationToken = default);
}
