namespace Conversations.Grains.Abstractions.Monitoring;

/// <summary>
/// What one gateway serves now, as it reports it every few seconds to the <see cref="IGatewayRegistryGrain"/>: the
/// threads it feeds and, per thread, its SSE subscribers and how far behind the slowest one is.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.GatewayReport")]
public sealed record GatewayReport(
    [Id(0)] string Id,
    [Id(1)] string Mode,
    [Id(2)] string Host,
    [Id(3)] DateTimeOffset StartedAt,
    [Id(4)] DateTimeOffset ReportedAt,
    [Id(5)] IReadOnlyList<WatchedThread> Threads)
{
    /// <summary>The addresses the gateway listens on (no credentials).</summary>
    [Id(6)]
    public IReadOnlyList<string> Addresses { get; init; } = [];

    /// <summary>How long the report stands: a gateway that has not reported again by then is gone.</summary>
    [Id(7)]
    public TimeSpan ValidFor { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// One thread a gateway feeds: its subscribers (clients of the thread's streams), watchers (the ops dashboard, not
/// counted as subscribers), the last sequence the feed delivered, and the slowest subscriber's lag (events it has
/// not read yet).
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.WatchedThread")]
public sealed record WatchedThread(
    [Id(0)] string ThreadId,
    [Id(1)] int Subscribers,
    [Id(2)] int Watchers,
    [Id(3)] long LastSequence,
    [Id(4)] int MaxLag);

/// <summary>The cluster's list of gateways (key 0): each reports itself; reports that expire drop out.</summary>
[Alias("conv.IGatewayRegistryGrain")]
public interface IGatewayRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Records (or replaces) a gateway's report.</summary>
    [Alias("Report")]
    Task ReportAsync(GatewayReport report, CancellationToken cancellationToken = default);

    /// <summary>A gateway that stops says so, rather than waiting for its report to expire.</summary>
    [Alias("Leave")]
    Task LeaveAsync(string gatewayId, CancellationToken cancellationToken = default);

    /// <summary>The gateways whose reports stand, by id.</summary>
    [Alias("GetGateways")]
    Task<IReadOnlyList<GatewayReport>> GetGatewaysAsync(CancellationToken cancellationToken = default);
}
