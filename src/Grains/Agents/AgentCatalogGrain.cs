using Conversations.Grains.Abstractions.Agents;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Agents;

/// <summary>
/// The cluster's agents: configuration's agents (and a <c>default</c> one when none is declared), overlaid with
/// those added or replaced at run time, which are stored and so survive restarts and reach every node.
/// </summary>
[GrainType("agent-catalog")]
public sealed class AgentCatalogGrain(
    [PersistentState("agents", AgentCatalogGrain.StorageName)] IPersistentState<AgentCatalogState> state,
    IOptions<AgentsOptions> options) : Grain, IAgentCatalogGrain
{
    /// <summary>The grain storage provider that holds the catalog.</summary>
    public const string StorageName = "agents";

    private SortedDictionary<string, AgentDefinition> _agents = new(StringComparer.Ordinal);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var agents = new SortedDictionary<string, AgentDefinition>(StringComparer.Ordinal);
        foreach (var (name, settings) in options.Value.Agents)
        {
            agents[name] = settings.ToDefinition(name);
        }

        agents.TryAdd(AgentDefinition.DefaultName, new AgentDefinition(AgentDefinition.DefaultName));
        foreach (var (name, agent) in state.State.Agents)
        {
            agents[name] = agent;
        }

        _agents = agents;
        return Task.CompletedTask;
    }

    public Task<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(_agents.GetValueOrDefault(name));

    public Task<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<AgentDefinition>>([.. _agents.Values]);

    public async Task UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agent.Name);
        var previous = state.State;
        state.State = new AgentCatalogState { Agents = new Dictionary<string, AgentDefinition>(previous.Agents, StringComparer.Ordinal) { [agent.Name] = agent } };
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch
        {
            state.State = previous;
            throw;
        }

        _agents[agent.Name] = agent;
    }
}

/// <summary>The agents added or replaced at run time.</summary>
[GenerateSerializer, Alias("conv.AgentCatalogState")]
public sealed record AgentCatalogState
{
    [Id(0)]
    public Dictionary<string, AgentDefinition> Agents { get; init; } = new(StringComparer.Ordinal);
}
