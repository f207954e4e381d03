namespace Conversations.Silo.Hosting;

/// <summary>One dependency a node needs to serve requests; readiness reports each.</summary>
public interface IReadinessCheck
{
    /// <summary>The dependency's name in the readiness report.</summary>
    string Name { get; }

    /// <summary>Null when ready, otherwise why not (no secrets).</summary>
    Task<string?> CheckAsync(CancellationToken cancellationToken);
}

/// <summary>A dependency is down (the cluster database, every silo): the request can be retried later. Maps to 503.</summary>
public sealed class DependencyUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);
