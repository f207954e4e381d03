namespace Conversations.Silo.Runtime;

/// <summary>
/// Thread ownership across silos: at most one silo holds a thread's lease at a time. A lease expires unless its
/// holder renews it, and every lease handed out for a thread carries a fencing token greater than any before it,
/// so a write fenced with an old token (<c>ThreadWrite.FencingToken</c>) is refused once another silo has taken over.
/// Expiry is judged by the store's clock (the database's), never by a silo's.
/// </summary>
public interface IThreadLeaseStore
{
    /// <summary>
    /// Acquires the thread's lease for <paramref name="siloId"/> for <paramref name="ttl"/>, if it is free, expired or
    /// already held by this silo. Taking a free or expired lease hands out a new, higher token; re-acquiring this
    /// silo's own live lease keeps its token and extends it. Returns null when another silo holds a live lease.
    /// </summary>
    Task<ThreadLease?> TryAcquireAsync(string threadId, string siloId, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends the lease to <paramref name="ttl"/> from now, if <paramref name="lease"/>'s silo still holds it with the
    /// same token and it has not expired. Returns false otherwise: the lease is lost and the holder must stop writing.
    /// </summary>
    Task<bool> RenewAsync(ThreadLease lease, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives the lease up, if <paramref name="lease"/> still holds it, so another silo can take the thread at once.
    /// The token is kept, so the next holder's token is higher. Returns false when the lease was already lost.
    /// </summary>
    Task<bool> ReleaseAsync(ThreadLease lease, CancellationToken cancellationToken = default);

    /// <summary>The thread's live lease (holder, token and expiry), or null when the lease is free or expired.</summary>
    Task<ThreadLease?> GetOwnerAsync(string threadId, CancellationToken cancellationToken = default);
}

/// <summary>A thread's lease as the store handed it out.</summary>
/// <param name="ThreadId">The thread.</param>
/// <param name="SiloId">The silo that holds it.</param>
/// <param name="Token">The fencing token: higher for every new holder of this thread's lease.</param>
/// <param name="ExpiresAt">When the lease expires unless renewed, by the store's clock.</param>
public sealed record ThreadLease(string ThreadId, string SiloId, long Token, DateTimeOffset ExpiresAt);
