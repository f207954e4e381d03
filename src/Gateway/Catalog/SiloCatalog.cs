using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Models;

namespace Conversations.Gateway.Catalog;

/// <summary>
/// What the silos run — their models, tools and agents — asked of the cluster on each use, so a gateway reports
/// what the silos do, never settings of its own.
/// </summary>
public sealed class SiloCatalog(IGrainFactory grains) : IAgentCatalog
{
    /// <summary>The silos' models (with capabilities), default model and tools.</summary>
    public Task<ModelCatalog> GetModelsAsync(CancellationToken cancellationToken) =>
        grains.GetGrain<IModelCatalogGrain>(0).GetAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default) =>
        await Agents.GetAsync(name, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default) =>
        await Agents.ListAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default) =>
        await Agents.UpsertAsync(agent, cancellationToken);

    /// <summary>The cluster's agent catalog.</summary>
    public IAgentCatalogGrain Agents => grains.GetGrain<IAgentCatalogGrain>(IAgentCatalogGrain.Key);
}
