namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// Settings of a gateway's cluster client: how it reaches silos (<see cref="SiloHttpClient"/>), finds a thread's
/// owner (<see cref="SiloLocator"/>) and keeps one upstream per watched thread (<see cref="ClusterThreadEventSource"/>).
/// The host fills it from the <c>Cluster</c> section.
/// </summary>
public sealed class ClusterClientOptions
{
    /// <summary>The shared secret sent as <c>X-Cluster-Key</c> on every internal request.</summary>
    public string ClusterKey { get; set; } = "";

    /// <summary>A silo whose heartbeat is older than this is not used.</summary>
    public TimeSpan SiloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the list of active silos is reused before it is read again.</summary>
    public TimeSpan ActiveSilosCacheDuration { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many 421 redirects a call or an upstream follows before it gives up and re-resolves.</summary>
    public int MaxRedirects { get; set; } = 3;

    /// <summary>How long a grain call may take before it fails as unavailable.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long connecting to a silo may take.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often an upstream of a thread nobody owns re-checks the lease when no <c>thread_activated</c> arrives.</summary>
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The first pause before an upstream retries after a failure; it doubles up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest pause between an upstream's retries.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many recent events of a watched thread stay in memory for local subscribers that join late.</summary>
    public int TailCapacity { get; set; } = 4096;

    /// <summary>How many events a slow local subscriber may fall behind before it is dropped (it can resume).</summary>
    public int SubscriberBufferCapacity { get; set; } = 16384;
}
