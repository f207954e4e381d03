using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>How a queued run request ended, as <see cref="PostgresRunQueue.WaitForResultAsync"/> reports it.</summary>
public abstract record RunQueueOutcome
{
    private RunQueueOutcome() { }

    /// <summary>A silo ran the request; this is the grain's answer.</summary>
    public sealed record Done(SendMessageResult Result) : RunQueueOutcome;

    /// <summary>The request was cancelled while still queued; no silo ran it.</summary>
    public sealed record Cancelled : RunQueueOutcome;

    /// <summary>No request with this run id was ever enqueued.</summary>
    public sealed record NotFound : RunQueueOutcome;
}
