namespace Conversations.Grains.Abstractions.Health;

/// <summary>
/// Whether the silos' dependencies (their storage) answer. A stateless worker: the silo that takes the call checks
/// its own. Gateways put it in their readiness report.
/// </summary>
[Alias("conv.IReadinessGrain")]
public interface IReadinessGrain : IGrainWithIntegerKey
{
    /// <summary>Each dependency's name with <c>ready</c> or why it is not (no secrets).</summary>
    [Alias("Check")]
    Task<Dictionary<string, string>> CheckAsync(CancellationToken cancellationToken = default);
}
