using Conversations.Grains.Abstractions.Events;

namespace Conversations.Grains.Threads;

/// <summary>
/// The durable side of thread streams: events persisted in batches so a watcher can resume from any sequence after
/// a restart, on any gateway. Sequences of one thread increase but need not be contiguous (a crashed activation's
/// reserved, unstored numbers are skipped, never reused). Raises <see cref="Abstractions.Threads.StorageUnavailableException"/>
/// (never a driver's exception) when the storage cannot be reached.
/// </summary>
public interface IEventLog
{
    /// <summary>Persists a batch of sequenced events. Appending an event already stored (same thread and sequence) is a no-op.</summary>
    Task AppendAsync(IReadOnlyList<ThreadEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Streams a thread's events with sequence greater than <paramref name="afterSequence"/> and at most <paramref name="toSequence"/>, in order.</summary>
    IAsyncEnumerable<ThreadEvent> ReadAsync(string threadId, long afterSequence, long toSequence = long.MaxValue, CancellationToken cancellationToken = default);

    /// <summary>The highest sequence stored for a thread; 0 for none.</summary>
    Task<long> GetLastSequenceAsync(string threadId, CancellationToken cancellationToken = default);
}
