using System.Net;

namespace Conversations.Silo.Cluster.Client;

/// <summary>No silo is active (registered, not stopped, with a recent heartbeat): nothing can serve the thread. Maps to 503.</summary>
public sealed class NoSiloAvailableException()
    : Exception("No silo is active in the cluster: none is registered with a recent heartbeat. Retry when a silo is up.");

/// <summary>
/// The silo that owns the thread (or was chosen for it) cannot be reached, or did not answer. Its lease may stay
/// live for up to the lease TTL after it died, so the thread cannot move yet. Maps to 503 ("the thread's node is
/// unavailable, retry").
/// </summary>
public sealed class ThreadNodeUnavailableException(string threadId, string? siloId, string reason, Exception? innerException = null)
    : Exception($"The node of thread '{threadId}'{(siloId is null ? "" : $" (silo '{siloId}')")} is unavailable: {reason}. Retry shortly.", innerException)
{
    public string ThreadId { get; } = threadId;
    public string? SiloId { get; } = siloId;
}

/// <summary>A silo answered an internal request with a status the contract does not expect of it (401, 500, 503, too many 421s …).</summary>
public sealed class SiloCallException(string threadId, string method, string address, HttpStatusCode statusCode, string detail)
    : Exception($"Silo at {address} answered {(int)statusCode} to '{method}' of thread '{threadId}': {detail}")
{
    public string ThreadId { get; } = threadId;
    public HttpStatusCode StatusCode { get; } = statusCode;
}
