namespace Conversations.Grains.Abstractions.Models;

/// <summary>
/// What the silos can run: their models (with capabilities) and tools. Gateways ask this instead of reading settings
/// of their own, so what they report is what the silos do. A stateless worker: every silo answers from its own
/// configuration, which a deployment keeps the same on every silo.
/// </summary>
[Alias("conv.IModelCatalogGrain")]
public interface IModelCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>The models, the default model and the tools.</summary>
    [Alias("Get")]
    Task<ModelCatalog> GetAsync(CancellationToken cancellationToken = default);
}

/// <summary>The silos' models and tools.</summary>
/// <param name="DefaultModel">The model used when an agent or request names none.</param>
/// <param name="Models">Every model the silos know by name, the default first.</param>
/// <param name="Tools">The names of the registered tools, ordered.</param>
/// <param name="IsDemo">True when the built-in demo model answers (no endpoint is configured).</param>
[GenerateSerializer, Immutable, Alias("conv.ModelCatalog")]
public sealed record ModelCatalog(
    [Id(0)] string DefaultModel,
    [Id(1)] IReadOnlyList<ModelInfo> Models,
    [Id(2)] IReadOnlyList<string> Tools,
    [Id(3)] bool IsDemo)
{
    /// <summary>The model with this name, or a model the default endpoint is asked for by that name.</summary>
    public ModelInfo Find(string? name) =>
        name is null ? Models[0] : Models.FirstOrDefault(m => m.Name == name) ?? new ModelInfo(name, SupportsStreaming: true);

    /// <summary>True when <paramref name="name"/> is one of <see cref="Models"/> (what an agent's <c>model</c> may name).</summary>
    public bool IsRegistered(string name) => Models.Any(m => m.Name == name);
}

/// <summary>A model and what it can do. Never carries an endpoint's key or URL.</summary>
[GenerateSerializer, Immutable, Alias("conv.ModelInfo")]
public sealed record ModelInfo([Id(0)] string Name, [Id(1)] bool SupportsStreaming)
{
    /// <summary>False for a model that is never sent tools.</summary>
    [Id(2)]
    public bool SupportsTools { get; init; } = true;

    /// <summary>The model's context window in tokens, when configuration gives it.</summary>
    [Id(3)]
    public int? ContextWindow { get; init; }

    /// <summary>The kind of endpoint: <see cref="ModelKinds"/>.</summary>
    [Id(4)]
    public string Kind { get; init; } = ModelKinds.Compatible;

    /// <summary>The model id (on Azure OpenAI the deployment) sent to the endpoint; the name when they are the same.</summary>
    [Id(5)]
    public string? ModelId { get; init; }
}

/// <summary>The kinds of model endpoint.</summary>
public static class ModelKinds
{
    /// <summary>api.openai.com (or a base URL given as OpenAI).</summary>
    public const string OpenAi = "openai";

    /// <summary>Azure OpenAI, through <c>Azure.AI.OpenAI</c>.</summary>
    public const string Azure = "azure";

    /// <summary>Any other OpenAI-compatible endpoint: Ollama, vLLM, LiteLLM, ….</summary>
    public const string Compatible = "compatible";

    /// <summary>The built-in demo model, which answers offline.</summary>
    public const string Demo = "demo";
}
