using System.Collections.Concurrent;
using Conversations.Grains.Abstractions.Runtime;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Runtime;

/// <summary>
/// The silo's activations: at most one per grain in this process, created on the first call and deactivated
/// after <see cref="RuntimeOptions.IdleTimeout"/> without calls or work of its own.
/// </summary>
public sealed class ActivationCatalog : IAsyncDisposable
{
    private readonly ConcurrentDictionary<GrainId, Activation> _activations = new();
    private readonly IReadOnlyDictionary<Type, Func<GrainContext, IOwnershipHandle, object>> _factories;
    private readonly IGrainOwnership _ownership;
    private readonly RuntimeOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ActivationCatalog> _logger;
    private readonly ITimer _sweep;
    private bool _stopping;

    public ActivationCatalog(
        IEnumerable<GrainKind> kinds, IServiceProvider services, IGrainOwnership ownership, IOptions<RuntimeOptions> options, TimeProvider time, ILogger<ActivationCatalog> logger)
    {
        _factories = kinds.ToDictionary(k => k.Interface, k => (Func<GrainContext, IOwnershipHandle, object>)((context, owned) => k.Create(services, context, owned)));
        _ownership = ownership;
        _options = options.Value;
        _time = time;
        _logger = logger;
        var period = _options.IdleTimeout < TimeSpan.FromSeconds(20) ? _options.IdleTimeout / 4 : TimeSpan.FromSeconds(5);
        _sweep = time.CreateTimer(_ => DeactivateIdle(), null, period, period);
    }

    /// <summary>How many activations are live.</summary>
    public int Count => _activations.Count;

    /// <summary>Whether a grain has a live activation here.</summary>
    public bool IsActive<TGrain>(string key) => _activations.ContainsKey(new GrainId(typeof(TGrain), key));

    /// <summary>A task that completes when the grain's current activation here has deactivated; null when it has none.</summary>
    public Task? GetDeactivation<TGrain>(string key) =>
        _activations.TryGetValue(new GrainId(typeof(TGrain), key), out var activation) ? activation.Deactivated : null;

    /// <summary>Queues a call on the grain's activation (creating it if needed) and awaits its result.</summary>
    public async Task<TResult> InvokeAsync<TGrain, TResult>(string key, Func<TGrain, Task<TResult>> call, CancellationToken cancellationToken)
    {
        var id = new GrainId(typeof(TGrain), key);
        while (true)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            var activation = GetOrCreate(id);
            var item = new WorkItem<TGrain, TResult>(call, cancellationToken);
            if (activation.TryEnqueue(item))
            {
                return await item.Result.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            // It is deactivating: wait until it is gone, so two activations of one grain never overlap.
            await activation.Deactivated.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Deactivates every activation idle for longer than the idle timeout.</summary>
    public void DeactivateIdle()
    {
        foreach (var activation in _activations.Values)
        {
            if (activation.TryCloseIfIdle(_options.IdleTimeout))
            {
                Log.Deactivating(_logger, activation.Id.ToString(), "idle");
            }
        }
    }

    /// <summary>Deactivates everything (shutdown): running work is interrupted and told why.</summary>
    public async Task DeactivateAllAsync()
    {
        // Idempotent: a second call waits for whatever is still deactivating.
        _stopping = true;
        var all = _activations.Values.ToList();
        foreach (var activation in all)
        {
            activation.Close(DeactivationReason.ShuttingDown);
        }

        await Task.WhenAll(all.Select(a => a.Deactivated)).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _sweep.DisposeAsync().ConfigureAwait(false);
        await DeactivateAllAsync().ConfigureAwait(false);
    }

    private Activation GetOrCreate(GrainId id)
    {
        if (_activations.TryGetValue(id, out var existing))
        {
            return existing;
        }

        if (!_factories.TryGetValue(id.Kind, out var factory))
        {
            throw new InvalidOperationException($"No grain class is registered for {id.Kind.Name}.");
        }

        // Only the activation that wins the race starts, so a grain is never activated twice in this silo.
        var created = new Activation(id, new GrainContext(id.Key, _options.SiloId), factory, _ownership, _time, _logger);
        var activation = _activations.GetOrAdd(id, created);
        if (ReferenceEquals(activation, created))
        {
            _ = created.RunAsync(a => _activations.TryRemove(new KeyValuePair<GrainId, Activation>(a.Id, a)));
        }

        return activation;
    }
}

/// <summary>A registered grain kind: its interface and how to make an instance for an activation (under its ownership).</summary>
public sealed record GrainKind(Type Interface, Func<IServiceProvider, GrainContext, IOwnershipHandle, object> Create);

/// <summary>Runtime settings.</summary>
public sealed class RuntimeOptions
{
    public const string SectionName = "Runtime";

    /// <summary>This silo's id.</summary>
    public string SiloId { get; set; } = "silo-" + Environment.MachineName.ToLowerInvariant() + "-" + Environment.ProcessId;

    /// <summary>How long an activation stays in memory without calls or work of its own.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);
}
