using Conversations.Grains.Abstractions.Models;
using Conversations.Grains.Agents;
using Conversations.Grains.Tools;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Conversations.Grains.Models;

/// <summary>
/// Answers what this silo's configuration runs: the models (default, non-streaming ones, those agents name) with
/// their capabilities, and the tools. A stateless worker, so any silo answers locally.
/// </summary>
[StatelessWorker]
public sealed class ModelCatalogGrain(
    IChatModelProvider models,
    ToolRegistry tools,
    ModelCatalogSettings settings,
    IOptions<AgentsOptions> agents) : Grain, IModelCatalogGrain
{
    public Task<ModelCatalog> GetAsync(CancellationToken cancellationToken = default)
    {
        var names = new[] { models.DefaultModel }
            .Concat(settings.NonStreamingModels.Order(StringComparer.Ordinal))
            .Concat(agents.Value.Agents.Values.Select(a => a.Model).OfType<string>())
            .Distinct(StringComparer.Ordinal);
        var infos = names.Select(name => models.Resolve(name)).Select(m => new ModelInfo(m.Name, m.SupportsStreaming)).ToList();
        var toolNames = tools.All.Select(t => t.Definition.Name).Order(StringComparer.Ordinal).ToList();
        return Task.FromResult(new ModelCatalog(models.DefaultModel, infos, toolNames, settings.IsDemo));
    }
}

/// <summary>What the model catalog reports beyond the models themselves: whether the demo model answers, and the endpoint's non-streaming models.</summary>
public sealed record ModelCatalogSettings(bool IsDemo, IReadOnlySet<string> NonStreamingModels);
