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
}

/// <summary>A model and what it can do.</summary>
[GenerateSerializer, Immutable, Alias("conv.ModelInfo")]
public sealed record ModelInfo([Id(0)] string Name, [Id(1)] bool SupportsStreaming);
