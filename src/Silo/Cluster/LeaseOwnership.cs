using Conversations.Silo.Runtime;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Cluster;

/// <summary>
/// Cluster mode: a grain activates only on the silo holding its lease in PostgreSQL. The lease is renewed every
/// third of its lifetime while the activation lives; if a renewal fails (another silo took over after this one
/// paused, or the database was unreachable until the lease ran out), ownership is lost and the fencing token stops
/// every further write. Each activation announces itself with <c>NOTIFY thread_activated</c>.
/// </summary>
public sealed class LeaseOwnership(
    IThreadLeaseStore leases,
    IThreadActivationNotifier notifier,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<LeaseOwnership> logger) : IGrainOwnership
{
    public async Task<IOwnershipHandle> AcquireAsync(Type grainKind, string key, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var lease = await leases.TryAcquireAsync(key, settings.SiloId, settings.LeaseTtl, cancellationToken).ConfigureAwait(false);
        if (lease is null)
        {
            var owner = await leases.GetOwnerAsync(key, cancellationToken).ConfigureAwait(false);
            throw new GrainOwnedElsewhereException(key, owner?.SiloId ?? "unknown");
        }

        var handle = new LeaseHandle(lease, leases, settings.LeaseTtl, time, logger);
        await notifier.NotifyActivatedAsync(key, cancellationToken).ConfigureAwait(false);
        return handle;
    }

    private sealed class LeaseHandle : IOwnershipHandle
    {
        private readonly IThreadLeaseStore _leases;
        private readonly TimeSpan _ttl;
        private readonly ILogger _logger;
        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewal;
        private ThreadLease _lease;

        public LeaseHandle(ThreadLease lease, IThreadLeaseStore leases, TimeSpan ttl, TimeProvider time, ILogger logger)
        {
            _lease = lease;
            _leases = leases;
            _ttl = ttl;
            _logger = logger;
            _renewal = RenewAsync(time);
        }

        public long? FencingToken => _lease.Token;

        public CancellationToken Lost => _lost.Token;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _renewal.ConfigureAwait(false);
            if (!_lost.IsCancellationRequested)
            {
                try
                {
                    // Given up at once, so another silo can take the thread without waiting for expiry.
                    await _leases.ReleaseAsync(_lease, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    Log.LeaseReleaseFailed(_logger, ex, _lease.ThreadId);
                }
            }

            _lost.Dispose();
            _stop.Dispose();
        }

        private async Task RenewAsync(TimeProvider time)
        {
            var period = _ttl / 3;
            var lastRenewed = time.GetTimestamp();
            using var timer = new PeriodicTimer(period, time);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    try
                    {
                        if (await _leases.RenewAsync(_lease, _ttl, _stop.Token).ConfigureAwait(false))
                        {
                            lastRenewed = time.GetTimestamp();
                            continue;
                        }

                        Log.LeaseLost(_logger, _lease.ThreadId, _lease.Token);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        // The database may come back before the lease runs out; past that, the lease is gone.
                        if (time.GetElapsedTime(lastRenewed) < _ttl)
                        {
                            Log.LeaseRenewalFailed(_logger, ex, _lease.ThreadId);
                            continue;
                        }

                        Log.LeaseLost(_logger, _lease.ThreadId, _lease.Token);
                    }

                    await _lost.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // Disposed.
            }
        }
    }
}

/// <summary>Tells gateways that a thread became active somewhere (PostgreSQL <c>NOTIFY thread_activated</c>).</summary>
public interface IThreadActivationNotifier
{
    Task NotifyActivatedAsync(string threadId, CancellationToken cancellationToken);
}
