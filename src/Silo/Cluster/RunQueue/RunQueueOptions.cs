namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>Timing and concurrency of the run queue; the defaults suit production.</summary>
public sealed class RunQueueOptions
{
    /// <summary>
    /// How often a waiter re-reads its request and a worker re-scans the queue without a notification: the fallback
    /// for a notification lost while the listener reconnects.
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A request taken longer ago than this and not finished is taken again (its taker is presumed gone). The grain
    /// is idempotent on the run id, so a second delivery answers as the first did.
    /// </summary>
    public TimeSpan TakenTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many requests one worker runs at once (of different threads).</summary>
    public int MaxConcurrency { get; init; } = 16;

    /// <summary>How long a listener waits before reconnecting after its connection failed.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a listener's connection may be silent before it is probed with a query.</summary>
    public TimeSpan ListenerKeepAlive { get; init; } = TimeSpan.FromSeconds(30);

    internal RunQueueOptions Validated()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PollInterval, TimeSpan.Zero, nameof(PollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(TakenTimeout, TimeSpan.Zero, nameof(TakenTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrency, 1, nameof(MaxConcurrency));
        ArgumentOutOfRangeException.ThrowIfLessThan(ReconnectDelay, TimeSpan.Zero, nameof(ReconnectDelay));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ListenerKeepAlive, TimeSpan.Zero, nameof(ListenerKeepAlive));
        return this;
    }
}
