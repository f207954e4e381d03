using Conversations.Grains.Abstractions.Monitoring;

namespace Conversations.Grains.Monitoring;

/// <summary>
/// The cluster's gateways as they last reported themselves. In memory only: gateways report every few seconds, so
/// after a deactivation or the loss of its silo the list is whole again within one report interval.
/// </summary>
[GrainType("gateway-registry")]
public sealed class GatewayRegistryGrain(TimeProvider time) : Grain, IGatewayRegistryGrain
{
    private readonly Dictionary<string, (GatewayReport Report, DateTimeOffset ExpiresAt)> _gateways = new(StringComparer.Ordinal);

    public Task ReportAsync(GatewayReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        _gateways[report.Id] = (report, time.GetUtcNow() + report.ValidFor);
        return Task.CompletedTask;
    }

    public Task LeaveAsync(string gatewayId, CancellationToken cancellationToken = default)
    {
        _gateways.Remove(gatewayId);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<GatewayReport>> GetGatewaysAsync(CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        foreach (var expired in _gateways.Where(g => g.Value.ExpiresAt <= now).Select(g => g.Key).ToList())
        {
            _gateways.Remove(expired);
        }

        return Task.FromResult<IReadOnlyList<GatewayReport>>([.. _gateways.Values.Select(g => g.Report).OrderBy(r => r.StartedAt).ThenBy(r => r.Id, StringComparer.Ordinal)]);
    }
}
