using System.ComponentModel.DataAnnotations;

namespace Conversations.Silo.Cluster;

/// <summary>
/// Cluster settings (section <c>Cluster</c>, environment <c>Cluster__X</c>). A connection string switches a gateway
/// to cluster mode (no co-hosted silo); a silo always runs in cluster mode.
/// </summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Cluster";

    /// <summary>The Npgsql connection string of the cluster's PostgreSQL.</summary>
    [Required(ErrorMessage = "Cluster:PostgresConnectionString (env Cluster__PostgresConnectionString) is required in cluster mode.")]
    public string PostgresConnectionString { get; set; } = "";

    /// <summary>
    /// How many PostgreSQL connections this node pools at most, unless the connection string says (Maximum Pool
    /// Size). Nodes × this must stay under the server's <c>max_connections</c>; requests wait for a free connection.
    /// </summary>
    [Range(2, 1000, ErrorMessage = "Cluster:MaxPoolSize must be between 2 and 1000.")]
    public int MaxPoolSize { get; set; } = 20;

    /// <summary>An optional schema for every table (tests isolate clusters with it).</summary>
    [RegularExpression("^[a-z_][a-z0-9_]{0,62}$", ErrorMessage = "Cluster:Schema must be a lowercase PostgreSQL identifier.")]
    public string? Schema { get; set; }

    /// <summary>The shared secret of internal requests (header <c>X-Cluster-Key</c>).</summary>
    [Required(ErrorMessage = "Cluster:ClusterKey (env Cluster__ClusterKey) is required in cluster mode.")]
    [MinLength(16, ErrorMessage = "Cluster:ClusterKey must be at least 16 characters.")]
    public string ClusterKey { get; set; } = "";

    /// <summary>This silo's id.</summary>
    public string SiloId { get; set; } = "silo-" + Environment.MachineName.ToLowerInvariant() + "-" + Environment.ProcessId;

    /// <summary>The base URL gateways use to reach this silo (silos only).</summary>
    public Uri? AdvertisedAddress { get; set; }

    /// <summary>How long a thread lease lasts; renewed every third of it while the grain is active.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Cluster:LeaseTtl must be between 1 s and 10 min.")]
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a silo heartbeats in the silo table.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Cluster:HeartbeatInterval must be between 100 ms and 1 min.")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A silo whose last heartbeat is older is not sent work.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "00:10:00", ErrorMessage = "Cluster:SiloTimeout must be between 500 ms and 10 min.")]
    public TimeSpan SiloTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
