using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Streams;

/// <summary>The consumer side of thread streams, as a gateway sees it.</summary>
public interface IThreadEventSource
{
    /// <summary>
    /// Streams a thread's events with sequence greater than <paramref name="afterSequence"/>: first those already
    /// appended (from memory or the durable log), then live ones as they are appended, with no gap and no
    /// duplicate, until cancelled. Throws <see cref="SubscriberOverflowException"/> when the subscriber falls too
    /// far behind; it can resume from the last sequence it received.
    /// </summary>
    IAsyncEnumerable<ThreadEvent> SubscribeAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default);
}

/// <summary>A subscriber read too slowly and was dropped so it would not hold up the thread.</summary>
public sealed class SubscriberOverflowException(string threadId, long lastSequence)
    : Exception($"The subscriber of thread '{threadId}' fell too far behind; resume after sequence {lastSequence}.");
