using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Models;

namespace Conversations.Grains.Models;

/// <summary>A model of the registry: the name requests and agents use, what it is, what it can do, and what answers.</summary>
/// <param name="Name">The name requests, agents and <c>/v1/models</c> use.</param>
/// <param name="Model">The model that answers (its <see cref="IChatModel.Name"/> is the id sent to the endpoint).</param>
public sealed record RegisteredModel(string Name, IChatModel Model)
{
    /// <summary>The kind of endpoint: <see cref="ModelKinds"/>.</summary>
    public string Kind { get; init; } = ModelKinds.Compatible;

    /// <summary>False for a model that is never sent tools (the agent loop then runs without them).</summary>
    public bool SupportsTools { get; init; } = true;

    /// <summary>The context window in tokens, when configuration gives it.</summary>
    public int? ContextWindow { get; init; }

    /// <summary>Where the endpoint is, for the log: scheme, host, port and path (never a key, a user or a query).</summary>
    public string Endpoint { get; init; } = "";

    public ModelInfo ToInfo() => new(Name, Model.SupportsStreaming)
    {
        SupportsTools = SupportsTools,
        ContextWindow = ContextWindow,
        Kind = Kind,
        ModelId = Model.Name,
    };
}

/// <summary>
/// The silo's models by name: those configuration registers (<c>Models:{name}</c>, the <c>OPENAI_*</c> endpoint's), or
/// the demo model when none is. A name that is not registered is asked of the default model's endpoint as a model id
/// (as <c>OPENAI_MODEL</c>'s endpoint always did), so dialects that pass a client's <c>model</c> through keep working.
/// </summary>
public sealed class ModelRegistry : IChatModelProvider
{
    private readonly Dictionary<string, RegisteredModel> _byName;
    private readonly Dictionary<string, IChatModel> _answering;
    private readonly Func<string, IChatModel> _passThrough;
    private readonly ConcurrentDictionary<string, IChatModel> _passedThrough = new(StringComparer.Ordinal);

    /// <param name="models">The registered models; names are unique.</param>
    /// <param name="defaultModel">The name of the model used when an agent or request names none; one of <paramref name="models"/>.</param>
    /// <param name="passThrough">The model for a name that is not registered (created once per name).</param>
    /// <param name="isDemo">True when the built-in demo model answers because nothing is configured.</param>
    public ModelRegistry(IEnumerable<RegisteredModel> models, string defaultModel, Func<string, IChatModel> passThrough, bool isDemo = false)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(passThrough);
        _byName = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        if (!_byName.TryGetValue(defaultModel, out var fallback))
        {
            throw new ArgumentException($"The default model '{defaultModel}' is not registered.", nameof(defaultModel));
        }

        _answering = _byName.Values.ToDictionary(m => m.Name, m => m.SupportsTools ? m.Model : new ToollessChatModel(m.Model), StringComparer.Ordinal);
        _passThrough = passThrough;
        Default = fallback;
        IsDemo = isDemo;
        Models = [fallback, .. _byName.Values.Where(m => m.Name != defaultModel).OrderBy(m => m.Name, StringComparer.Ordinal)];
    }

    /// <summary>Every registered model, the default first, then by name.</summary>
    public IReadOnlyList<RegisteredModel> Models { get; }

    /// <summary>The default model.</summary>
    public RegisteredModel Default { get; }

    /// <summary>True when the built-in demo model answers because nothing is configured.</summary>
    public bool IsDemo { get; }

    /// <inheritdoc />
    public string DefaultModel => Default.Name;

    /// <summary>The registered model of this name, or null.</summary>
    public RegisteredModel? Find(string name) => _byName.GetValueOrDefault(name);

    /// <inheritdoc />
    public IChatModel Resolve(string? modelName)
    {
        if (string.IsNullOrWhiteSpace(modelName))
        {
            return _answering[Default.Name];
        }

        return _answering.TryGetValue(modelName, out var registered) ? registered : _passedThrough.GetOrAdd(modelName, _passThrough);
    }

    /// <summary>What a name stands for: its registered model, or a model of the default endpoint by that id.</summary>
    public ModelInfo Describe(string name) =>
        Find(name)?.ToInfo() ?? new ModelInfo(name, Resolve(name).SupportsStreaming)
        {
            SupportsTools = Default.SupportsTools,
            Kind = Default.Kind,
            ModelId = Resolve(name).Name,
        };

    /// <summary>A model that is never sent tools: the request's tools are left out.</summary>
    private sealed class ToollessChatModel(IChatModel inner) : IChatModel
    {
        public string Name => inner.Name;

        public bool SupportsStreaming => inner.SupportsStreaming;

        public async IAsyncEnumerable<ModelUpdate> StreamAsync(ModelRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await foreach (var update in inner.StreamAsync(request with { Tools = [] }, cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                yield return update;
            }
        }
    }
}
