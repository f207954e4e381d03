using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime.Diagnostics;

namespace Conversations.Grains.Threads;

/// <summary>
/// Ends a thread's watches the moment Orleans starts deactivating it, rather than when it runs
/// <see cref="ThreadGrain.OnDeactivateAsync"/>.
/// </summary>
/// <remarks>
/// Orleans runs a deactivation only once no call of the activation is executing, and a watcher always has one: the
/// fetch of its next events, which Orleans holds open for half the response timeout (15 s by default) when there is
/// nothing to send. Left alone, a watched thread would take that long to deactivate, and its watchers' next fetch
/// would reach the next activation, which does not know their enumeration. Orleans announces the start of every
/// deactivation on its grain lifecycle <see cref="DiagnosticListener"/> (<see cref="GrainLifecycleEvents"/>); on that
/// event the thread's watches end at once, on the activation's own scheduler: the pending fetch answers that the
/// enumeration is over, the deactivation proceeds, and each watcher calls again with its last sequence and reaches
/// the next activation. Only the deactivation-start event is enabled, so nothing is spent on the others. Registered
/// by the silo host as a hosted service.
/// </remarks>
public sealed class WatchesEndOnDeactivation(ILocalSiloDetails silo) : IHostedService, IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
{
    private const string DeactivatingEvent = nameof(GrainLifecycleEvents.Deactivating);

    private readonly List<IDisposable> _subscriptions = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_subscriptions)
        {
            _subscriptions.Add(DiagnosticListener.AllListeners.Subscribe(this));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_subscriptions)
        {
            foreach (var subscription in _subscriptions)
            {
                subscription.Dispose();
            }

            _subscriptions.Clear();
        }

        return Task.CompletedTask;
    }

    void IObserver<DiagnosticListener>.OnNext(DiagnosticListener listener)
    {
        if (listener.Name == GrainLifecycleEvents.ListenerName)
        {
            lock (_subscriptions)
            {
                _subscriptions.Add(listener.Subscribe(this, name => name == DeactivatingEvent));
            }
        }
    }

    void IObserver<KeyValuePair<string, object?>>.OnNext(KeyValuePair<string, object?> value)
    {
        // Raised inside Orleans' deactivation, under the activation's lock: only queue the work.
        // The listener is the process's: in a process with several silos, each takes its own activations.
        if (value.Value is GrainLifecycleEvents.Deactivating { GrainContext: { GrainInstance: ThreadGrain thread } context }
            && silo.SiloAddress.Equals(context.Address.SiloAddress))
        {
            try
            {
                context.Scheduler.QueueAction(thread.EndWatches);
            }
            catch (Exception)
            {
                // Never into Orleans' deactivation: an activation that cannot take work any more has no watchers left
                // to end, and at worst they end when its deactivation runs (OnDeactivateAsync).
            }
        }
    }

    void IObserver<DiagnosticListener>.OnCompleted()
    {
    }

    void IObserver<DiagnosticListener>.OnError(Exception error)
    {
    }

    void IObserver<KeyValuePair<string, object?>>.OnCompleted()
    {
    }

    void IObserver<KeyValuePair<string, object?>>.OnError(Exception error)
    {
    }
}
