using System.Threading.Channels;
using Conversations.Grains.Abstractions.Runtime;

namespace Conversations.Silo.Runtime;

/// <summary>
/// One live grain instance and its mailbox. Calls run one at a time, in arrival order, on the activation's
/// exclusive scheduler; work the grain starts in the background (a run) continues on the same scheduler, so it
/// interleaves with calls only at awaits and never runs in parallel with them — Orleans' turn-based model.
/// </summary>
internal sealed class Activation
{
    private readonly Channel<WorkItem> _mailbox = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskScheduler _scheduler = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;
    private readonly TaskCompletionSource _deactivated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly Func<GrainContext, IOwnershipHandle, object> _createGrain;
    private readonly IGrainOwnership _ownership;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private object? _grain;
    private int _pending;
    private bool _closed;
    private DeactivationReason _reason = DeactivationReason.IdleTimeout;

    public Activation(GrainId id, GrainContext context, Func<GrainContext, IOwnershipHandle, object> createGrain, IGrainOwnership ownership, TimeProvider time, ILogger logger)
    {
        Id = id;
        Context = context;
        _createGrain = createGrain;
        _ownership = ownership;
        _time = time;
        _logger = logger;
        LastActive = time.GetTimestamp();
    }

    public GrainId Id { get; }

    public GrainContext Context { get; }

    public long LastActive { get; private set; }

    /// <summary>Completes when the activation has deactivated; a caller that found it closed waits for this, then retries.</summary>
    public Task Deactivated => _deactivated.Task;

    /// <summary>Started by the catalog once: activates the grain, then serves the mailbox until it is closed.</summary>
    public Task RunAsync(Action<Activation> onDeactivated) => Task.Run(async () =>
    {
        IOwnershipHandle? ownership = null;
        try
        {
            // Ownership first (cluster: the thread's lease), then the grain reads its state under it.
            ownership = await _ownership.AcquireAsync(Id.Kind, Id.Key, CancellationToken.None).ConfigureAwait(false);
            var owned = ownership;
            await RunOnSchedulerAsync(async () =>
            {
                _grain = _createGrain(Context, owned);
                if (_grain is IGrainLifecycle lifecycle)
                {
                    await lifecycle.OnActivateAsync(CancellationToken.None);
                }
            });
        }
        catch (Exception ex)
        {
            if (ex is not GrainOwnedElsewhereException)
            {
                Log.ActivationFailed(_logger, ex, Id.ToString());
            }

            Close(DeactivationReason.ShuttingDown);
            await foreach (var item in _mailbox.Reader.ReadAllAsync())
            {
                item.Fail(ex);
            }

            if (ownership is not null)
            {
                await ownership.DisposeAsync().ConfigureAwait(false);
            }

            onDeactivated(this);
            _deactivated.TrySetResult();
            return;
        }

        // Ownership lost (another silo took the lease): stop taking calls and deactivate.
        await using var lostRegistration = ownership.Lost.Register(() => Close(DeactivationReason.OwnershipLost)).ConfigureAwait(false);
        await foreach (var item in _mailbox.Reader.ReadAllAsync())
        {
            await RunOnSchedulerAsync(() => item.ExecuteAsync(_grain));
            lock (_gate)
            {
                _pending--;
                LastActive = _time.GetTimestamp();
            }
        }

        try
        {
            if (_grain is IGrainLifecycle lifecycle)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await RunOnSchedulerAsync(() => lifecycle.OnDeactivateAsync(_reason, timeout.Token));
            }
        }
        catch (Exception ex)
        {
            Log.DeactivationFailed(_logger, ex, Id.ToString());
        }
        finally
        {
            await ownership.DisposeAsync().ConfigureAwait(false);
            onDeactivated(this);
            _deactivated.TrySetResult();
        }
    });

    /// <summary>Queues a call; false when the activation is closing and the caller must use a new one.</summary>
    public bool TryEnqueue(WorkItem item)
    {
        lock (_gate)
        {
            if (_closed || !_mailbox.Writer.TryWrite(item))
            {
                return false;
            }

            _pending++;
            LastActive = _time.GetTimestamp();
            return true;
        }
    }

    /// <summary>Closes the mailbox if the activation has been idle for <paramref name="idleTimeout"/> with nothing queued and no work of its own.</summary>
    public bool TryCloseIfIdle(TimeSpan idleTimeout)
    {
        lock (_gate)
        {
            if (_closed || _pending > 0 || _grain is null || _time.GetElapsedTime(LastActive) < idleTimeout
                || (_grain is IGrainLifecycle { IsBusy: true }))
            {
                return false;
            }

            CloseLocked(DeactivationReason.IdleTimeout);
            return true;
        }
    }

    /// <summary>Closes the mailbox: queued calls still run, then the grain deactivates.</summary>
    public void Close(DeactivationReason reason)
    {
        lock (_gate)
        {
            CloseLocked(reason);
        }
    }

    private void CloseLocked(DeactivationReason reason)
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        _reason = reason;
        _mailbox.Writer.TryComplete();
    }

    private Task RunOnSchedulerAsync(Func<Task> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, _scheduler).Unwrap();
}

/// <summary>A call queued in a mailbox.</summary>
internal abstract class WorkItem
{
    public abstract Task ExecuteAsync(object? grain);

    public abstract void Fail(Exception exception);
}

/// <summary>A call that returns <typeparamref name="TResult"/>.</summary>
internal sealed class WorkItem<TGrain, TResult>(Func<TGrain, Task<TResult>> call, CancellationToken cancellationToken) : WorkItem
{
    private readonly TaskCompletionSource<TResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<TResult> Result => _result.Task;

    public override async Task ExecuteAsync(object? grain)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            _result.TrySetCanceled(cancellationToken);
            return;
        }

        try
        {
            _result.TrySetResult(await call((TGrain)grain!));
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            _result.TrySetCanceled(ex.CancellationToken);
        }
        catch (Exception ex)
        {
            _result.TrySetException(ex);
        }
    }

    public override void Fail(Exception exception) => _result.TrySetException(exception);
}

/// <summary>A grain's identity: its kind (interface) and key.</summary>
internal readonly record struct GrainId(Type Kind, string Key)
{
    public override string ToString() => $"{Kind.Name}/{Key}";
}
