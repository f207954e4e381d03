using Conversations.Grains.Abstractions.Events;

namespace Conversations.Grains.Abstractions.Runtime;

/// <summary>The producer side of a thread's stream, as a grain sees it.</summary>
public interface IThreadStreamProvider
{
    /// <summary>Opens the stream of a thread for appending.</summary>
    ValueTask<IThreadStream> GetStreamAsync(string threadId, CancellationToken cancellationToken = default);
}

/// <summary>An ordered, per-thread event log with live delivery to subscribers.</summary>
public interface IThreadStream
{
    /// <summary>The sequence of the last event appended (0 for none).</summary>
    long LastSequence { get; }

    /// <summary>
    /// Appends an event: assigns the next sequence and the time and queues it; subscribers receive it once it is
    /// durable. Returns the event as appended.
    /// </summary>
    ValueTask<ThreadEvent> AppendAsync(ThreadEvent threadEvent, CancellationToken cancellationToken = default);
}
