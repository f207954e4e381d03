namespace Conversations.Silo.Runtime;

/// <summary>
/// Cluster membership: every silo registers itself with its internal address and heartbeats while it runs;
/// gateways list the silos whose heartbeat is recent. Ages are judged by the store's clock, never by a silo's.
/// </summary>
public interface ISiloDirectory
{
    /// <summary>Registers the silo (or re-registers it after a restart) as active, with a fresh start time and heartbeat.</summary>
    Task RegisterAsync(string siloId, string address, CancellationToken cancellationToken = default);

    /// <summary>Records that the silo is alive. Returns false when it is not registered or was marked stopped.</summary>
    Task<bool> HeartbeatAsync(string siloId, CancellationToken cancellationToken = default);

    /// <summary>Marks the silo stopped (a clean shutdown), so it is no longer listed. Idempotent.</summary>
    Task MarkStoppedAsync(string siloId, CancellationToken cancellationToken = default);

    /// <summary>The active silos whose last heartbeat is at most <paramref name="maxHeartbeatAge"/> old, by silo id.</summary>
    Task<IReadOnlyList<SiloEntry>> ListActiveAsync(TimeSpan maxHeartbeatAge, CancellationToken cancellationToken = default);
}

/// <summary>A silo as the directory lists it.</summary>
public sealed record SiloEntry(string SiloId, string Address, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt, string Status);

/// <summary>Values of <see cref="SiloEntry.Status"/>.</summary>
public static class SiloStatuses
{
    public const string Active = "active";
    public const string Stopped = "stopped";
}
