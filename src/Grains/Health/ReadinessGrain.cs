using Conversations.Grains.Abstractions.Health;
using Orleans.Concurrency;

namespace Conversations.Grains.Health;

/// <summary>One dependency a silo needs to serve grains (its storage); the readiness report names each.</summary>
public interface IReadinessCheck
{
    /// <summary>The dependency's name in the readiness report.</summary>
    string Name { get; }

    /// <summary>Null when ready, otherwise why not (no secrets).</summary>
    Task<string?> CheckAsync(CancellationToken cancellationToken);
}

/// <summary>Runs this silo's readiness checks, each bounded to a few seconds.</summary>
[StatelessWorker]
public sealed class ReadinessGrain(IEnumerable<IReadinessCheck> checks) : Grain, IReadinessGrain
{
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);

    public async Task<Dictionary<string, string>> CheckAsync(CancellationToken cancellationToken = default)
    {
        var results = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var check in checks)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(CheckTimeout);
            string? problem;
            try
            {
                problem = await check.CheckAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                problem = $"did not answer within {CheckTimeout.TotalSeconds:0} s";
            }

            results[check.Name] = problem ?? "ready";
        }

        return results;
    }
}
