namespace Conversations.Grains.Abstractions.Runtime;

/// <summary>Marks a grain interface whose key is a string (Orleans' <c>IGrainWithStringKey</c>).</summary>
public interface IGrainWithStringKey;

/// <summary>Gives references to grains; calls through a reference reach the grain's single activation.</summary>
public interface IGrainFactory
{
    /// <summary>A reference to the grain of kind <typeparamref name="TGrain"/> with this key.</summary>
    TGrain GetGrain<TGrain>(string key) where TGrain : IGrainWithStringKey;
}

/// <summary>
/// Lifecycle callbacks the runtime invokes on a grain activation, inside the activation's turn-based scheduler.
/// </summary>
public interface IGrainLifecycle
{
    /// <summary>Called once before the first call reaches the activation.</summary>
    Task OnActivateAsync(CancellationToken cancellationToken);

    /// <summary>Called once when the runtime deactivates the activation (idle, or shutting down).</summary>
    Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken);

    /// <summary>True while the grain has work of its own in flight (a run); an idle sweep leaves it active.</summary>
    bool IsBusy { get; }
}

public enum DeactivationReason
{
    IdleTimeout,
    ShuttingDown,
    /// <summary>This silo no longer owns the grain (cluster: its lease was lost); it must not write.</summary>
    OwnershipLost,
}

/// <summary>The identity of the activation a grain runs in.</summary>
/// <param name="Key">The grain's key.</param>
/// <param name="SiloId">The silo hosting the activation.</param>
public sealed record GrainContext(string Key, string SiloId);
