namespace Conversations.Silo.Runtime;

/// <summary>
/// Decides whether this silo may activate a grain, and keeps that right while the activation lives. Embedded mode
/// owns everything; cluster mode takes the grain's lease in PostgreSQL (<c>Cluster.LeaseOwnership</c>).
/// </summary>
public interface IGrainOwnership
{
    /// <summary>
    /// Takes ownership of the grain before it activates. Throws <see cref="GrainOwnedElsewhereException"/> when
    /// another silo owns it.
    /// </summary>
    Task<IOwnershipHandle> AcquireAsync(Type grainKind, string key, CancellationToken cancellationToken);
}

/// <summary>Ownership of one activation: held until disposed (which gives it up).</summary>
public interface IOwnershipHandle : IAsyncDisposable
{
    /// <summary>The fencing token every write of the activation carries; null where there is nothing to fence.</summary>
    long? FencingToken { get; }

    /// <summary>Cancelled when ownership is lost (the lease could not be renewed): the activation must stop writing.</summary>
    CancellationToken Lost { get; }
}

/// <summary>Another silo owns the grain; calls belong there.</summary>
public sealed class GrainOwnedElsewhereException(string key, string ownerSiloId)
    : Exception($"'{key}' is owned by silo '{ownerSiloId}'.")
{
    public string Key { get; } = key;
    public string OwnerSiloId { get; } = ownerSiloId;
}

/// <summary>Embedded mode: the only silo owns every grain; nothing is fenced and ownership is never lost.</summary>
public sealed class LocalOwnership : IGrainOwnership
{
    public Task<IOwnershipHandle> AcquireAsync(Type grainKind, string key, CancellationToken cancellationToken) =>
        Task.FromResult<IOwnershipHandle>(Handle.Instance);

    private sealed class Handle : IOwnershipHandle
    {
        public static readonly Handle Instance = new();

        public long? FencingToken => null;

        public CancellationToken Lost => CancellationToken.None;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
