using Conversations.Grains.Abstractions.Models;
using Conversations.Grains.Agents;
using Conversations.Grains.Tools;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Conversations.Grains.Models;

/// <summary>
/// Answers what this silo's configuration runs: the registered models with their capabilities (and the models that
/// configured agents name on the default endpoint), and the tools. A stateless worker, so any silo answers locally.
/// Never reports a key or an endpoint's URL.
/// </summary>
[StatelessWorker]
public sealed class ModelCatalogGrain(
    ModelRegistry models,
    ToolRegistry tools,
    IOptions<AgentsOptions> agents) : Grain, IModelCatalogGrain
{
    public Task<ModelCatalog> GetAsync(CancellationToken cancellationToken = default)
    {
        var infos = models.Models.Select(m => m.ToInfo()).ToList();
        var agentModels = agents.Value.Agents.Values.Select(a => a.Model).OfType<string>()
            .Where(name => models.Find(name) is null)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal);
        infos.AddRange(agentModels.Select(models.Describe));
        var toolNames = tools.All.Select(t => t.Definition.Name).Order(StringComparer.Ordinal).ToList();
        return Task.FromResult(new ModelCatalog(models.DefaultModel, infos, toolNames, models.IsDemo));
    }
}
