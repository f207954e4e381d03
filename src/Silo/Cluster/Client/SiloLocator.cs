using System.Text;
using Conversations.Silo.Runtime;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// Finds where a thread's calls and events go: the silo holding the thread's live lease, else (for calls) the
/// active silo that rendezvous hashing of the thread id picks, for affinity. The lease is read on every lookup;
/// the list of active silos is reused for <see cref="ClusterClientOptions.ActiveSilosCacheDuration"/>.
/// Thread-safe.
/// </summary>
public sealed class SiloLocator
{
    private readonly IThreadLeaseStore _leases;
    private readonly ISiloDirectory _directory;
    private readonly ClusterClientOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Task<IReadOnlyList<SiloEntry>>? _active;
    private long _activeFetchedAt;

    public SiloLocator(IThreadLeaseStore leases, ISiloDirectory directory, ClusterClientOptions options, TimeProvider? time = null)
    {
        _leases = leases ?? throw new ArgumentNullException(nameof(leases));
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// The silo a call to the thread goes to. Throws <see cref="NoSiloAvailableException"/> when no silo is active,
    /// and <see cref="ThreadNodeUnavailableException"/> when the thread's live lease names a silo that is not active
    /// (it died, and its lease has not expired yet).
    /// </summary>
    public async Task<SiloRoute> LocateAsync(string threadId, CancellationToken cancellationToken = default)
    {
        var owner = await FindOwnerAsync(threadId, cancellationToken).ConfigureAwait(false);
        if (owner.Silo is { } silo)
        {
            return new SiloRoute(silo, IsOwner: true);
        }

        if (owner.Lease is { } lease)
        {
            throw new ThreadNodeUnavailableException(threadId, lease.SiloId, "its lease is held by a silo that is not active (it may have stopped; the lease expires by itself)");
        }

        var active = await GetActiveSilosAsync(refresh: false, cancellationToken).ConfigureAwait(false);
        if (active.Count == 0)
        {
            active = await GetActiveSilosAsync(refresh: true, cancellationToken).ConfigureAwait(false);
        }

        return active.Count == 0
            ? throw new NoSiloAvailableException()
            : new SiloRoute(PickByRendezvous(threadId, active), IsOwner: false);
    }

    /// <summary>
    /// The thread's live lease and, when its holder is an active silo, that silo. A lease whose holder is not in
    /// the (possibly cached) active list is looked up again in a fresh list, so a silo that just started is found.
    /// </summary>
    public async Task<ThreadOwner> FindOwnerAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        var lease = await _leases.GetOwnerAsync(threadId, cancellationToken).ConfigureAwait(false);
        if (lease is null)
        {
            return new ThreadOwner(null, null);
        }

        var silo = Find(await GetActiveSilosAsync(refresh: false, cancellationToken).ConfigureAwait(false), lease.SiloId)
            ?? Find(await GetActiveSilosAsync(refresh: true, cancellationToken).ConfigureAwait(false), lease.SiloId);
        return new ThreadOwner(lease, silo);
    }

    /// <summary>Forgets the cached list of active silos (after a silo could not be reached).</summary>
    public void InvalidateActiveSilos()
    {
        lock (_gate)
        {
            _active = null;
        }
    }

    /// <summary>
    /// Rendezvous (highest random weight) hashing: the silo whose hash with the thread id is highest. Stable while
    /// the set of silos is, and a silo that leaves or joins moves only the threads that hash highest to it.
    /// </summary>
    public static SiloEntry PickByRendezvous(string threadId, IReadOnlyList<SiloEntry> silos)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfZero(silos.Count, nameof(silos));
        var best = silos[0];
        var bestScore = Score(threadId, best.SiloId);
        for (var i = 1; i < silos.Count; i++)
        {
            var score = Score(threadId, silos[i].SiloId);
            if (score > bestScore || (score == bestScore && string.CompareOrdinal(silos[i].SiloId, best.SiloId) < 0))
            {
                best = silos[i];
                bestScore = score;
            }
        }

        return best;
    }

    private static SiloEntry? Find(IReadOnlyList<SiloEntry> silos, string siloId) =>
        silos.FirstOrDefault(s => string.Equals(s.SiloId, siloId, StringComparison.Ordinal));

    private Task<IReadOnlyList<SiloEntry>> GetActiveSilosAsync(bool refresh, CancellationToken cancellationToken)
    {
        Task<IReadOnlyList<SiloEntry>> fetch;
        lock (_gate)
        {
            var fresh = _active is { IsFaulted: false, IsCanceled: false }
                && _time.GetElapsedTime(_activeFetchedAt) < _options.ActiveSilosCacheDuration;
            if (fresh && !(refresh && _active!.IsCompleted))
            {
                fetch = _active!;
            }
            else
            {
                // Not tied to one caller's token: callers share the fetch; each stops waiting on its own token.
                fetch = _active = _directory.ListActiveAsync(_options.SiloTimeout, CancellationToken.None);
                _activeFetchedAt = _time.GetTimestamp();
            }
        }

        return fetch.WaitAsync(cancellationToken);
    }

    // FNV-1a over the UTF-8 of "thread\nsilo", then a 64-bit finalizer (SplitMix64) so close ids spread evenly.
    private static ulong Score(string threadId, string siloId)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(threadId + "\n" + siloId))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        hash ^= hash >> 30;
        hash *= 0xBF58476D1CE4E5B9UL;
        hash ^= hash >> 27;
        hash *= 0x94D049BB133111EBUL;
        return hash ^ (hash >> 31);
    }
}

/// <summary>Where a call goes: the lease owner, or (no live owner) the silo chosen by hashing.</summary>
public sealed record SiloRoute(SiloEntry Silo, bool IsOwner);

/// <summary>
/// A thread's owner: <see cref="Lease"/> is its live lease or null when nobody holds one; <see cref="Silo"/> is the
/// holder when it is an active silo, null otherwise (no lease, or a holder that stopped heartbeating).
/// </summary>
public sealed record ThreadOwner(ThreadLease? Lease, SiloEntry? Silo);
