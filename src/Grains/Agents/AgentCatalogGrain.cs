using System.Text.Json;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Http;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Agents;

/// <summary>
/// The cluster's agents: configuration's agents (and a <c>default</c> one when none is declared), overlaid with
/// those written at run time (the agents API, seed 003's <c>POST /agents/{name}</c>), which are stored and so survive
/// restarts and reach every node. A write through the API wins over configuration for its name from then on, across
/// restarts and configuration changes; a delete leaves a tombstone that hides a configured agent until the name is
/// created again. An agent the API never wrote follows configuration.
/// </summary>
[GrainType("agent-catalog")]
public sealed class AgentCatalogGrain(
    [PersistentState("agents", AgentCatalogGrain.StorageName)] IPersistentState<AgentCatalogState> state,
    IOptions<AgentsOptions> options,
    ToolRegistry tools,
    TimeProvider time) : Grain, IAgentCatalogGrain
{
    /// <summary>The grain storage provider that holds the catalog.</summary>
    public const string StorageName = "agents";

    private Dictionary<string, AgentDefinition> _configured = new(StringComparer.Ordinal);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var configured = new Dictionary<string, AgentDefinition>(StringComparer.Ordinal);
        foreach (var (name, settings) in options.Value.Agents)
        {
            configured[name] = settings.ToDefinition(name);
        }

        configured.TryAdd(AgentDefinition.DefaultName, new AgentDefinition(AgentDefinition.DefaultName));
        _configured = configured;
        return Task.CompletedTask;
    }

    public Task<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(Resolve(name)?.Definition);

    public Task<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<AgentDefinition>>([.. All().Select(a => a.Definition)]);

    public Task<AgentResource?> GetResourceAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(Resolve(name));

    public Task<IReadOnlyList<AgentResource>> ListResourcesAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<AgentResource>>([.. All()]);

    public async Task UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agent.Name);
        await WriteAsync(agent.Name, agent, cancellationToken);
    }

    public async Task<AgentWriteResult> CreateAsync(AgentDefinition agent, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agent.Name);
        if (Check(agent) is { } invalid)
        {
            return invalid;
        }

        if (Resolve(agent.Name) is { } existing)
        {
            return new AgentWriteResult.AlreadyExists(existing);
        }

        return new AgentWriteResult.Saved(await WriteAsync(agent.Name, agent, cancellationToken), Created: true);
    }

    public async Task<AgentWriteResult> ReplaceAsync(AgentDefinition agent, long? expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agent.Name);
        var current = Resolve(agent.Name);
        if (current is null)
        {
            return new AgentWriteResult.NotFound(agent.Name);
        }

        if (Check(agent) is { } invalid)
        {
            return invalid;
        }

        if (expectedVersion is { } expected && expected != current.Version)
        {
            return new AgentWriteResult.VersionMismatch(current);
        }

        return new AgentWriteResult.Saved(await WriteAsync(agent.Name, agent, cancellationToken), Created: false);
    }

    public async Task<AgentWriteResult> DeleteAsync(string name, long? expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name == AgentDefinition.DefaultName)
        {
            return new AgentWriteResult.Protected(name, "The default agent answers every message that names no agent; replace or patch it instead.");
        }

        var current = Resolve(name);
        if (current is null)
        {
            return new AgentWriteResult.NotFound(name);
        }

        if (expectedVersion is { } expected && expected != current.Version)
        {
            return new AgentWriteResult.VersionMismatch(current);
        }

        var version = await WriteAsync(name, null, cancellationToken);
        return new AgentWriteResult.Deleted(name, version.Version);
    }

    /// <summary>
    /// The agent's own HTTP tools against the rules configuration's tools follow (<see cref="HttpToolDeclaration"/>),
    /// with names no other tool of the agent has; null when all is well.
    /// </summary>
    private AgentWriteResult.Invalid? Check(AgentDefinition agent)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var names = (agent.ClientTools ?? []).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var declared = agent.HttpTools ?? [];
        for (var i = 0; i < declared.Count; i++)
        {
            var definition = declared[i];
            var prefix = $"httpTools[{i}]";
            string Label(string field) => $"{prefix}.{(field == "timeout" ? "timeoutSeconds" : field)}";
            JsonElement? schema = null;
            try
            {
                using var document = JsonDocument.Parse(definition.Parameters);
                schema = document.RootElement.Clone();
            }
            catch (JsonException)
            {
                errors[Label("parameters")] = [$"{Label("parameters")} must be a JSON schema object."];
            }

            var taken = tools.Find(definition.Name) is not null ? "the name of a server tool"
                : !names.Add(definition.Name) ? "the name of another tool of the agent"
                : null;
            HttpToolDeclaration.Validate(
                definition.Name,
                HttpToolDeclaration.ToSettings(definition),
                schema,
                taken,
                Label,
                (field, message) => errors.TryAdd(Label(field), [message]),
                HttpToolDeclaration.MaxAgentToolTimeout);
        }

        return errors.Count == 0 ? null : new AgentWriteResult.Invalid(errors);
    }

    /// <summary>The agent as it is now: the API's write (unless deleted), else configuration's; null when neither.</summary>
    private AgentResource? Resolve(string name)
    {
        var revision = state.State.Revisions.GetValueOrDefault(name);
        if (revision is { Deleted: true })
        {
            return null;
        }

        var configured = _configured.ContainsKey(name);
        if (state.State.Agents.TryGetValue(name, out var written))
        {
            // Agents written before revisions were kept have version 1.
            return new AgentResource(written, revision?.Version ?? 1)
            {
                Source = AgentSources.Api,
                Configured = configured,
                CreatedAt = revision?.CreatedAt,
                UpdatedAt = revision?.UpdatedAt,
            };
        }

        return configured ? new AgentResource(_configured[name], 0) { Source = AgentSources.Configuration, Configured = true } : null;
    }

    private IEnumerable<AgentResource> All() =>
        _configured.Keys.Union(state.State.Agents.Keys, StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .Select(Resolve)
            .OfType<AgentResource>();

    /// <summary>Stores <paramref name="agent"/> under <paramref name="name"/>, or (null) a tombstone; returns the new revision's resource.</summary>
    private async Task<AgentResource> WriteAsync(string name, AgentDefinition? agent, CancellationToken cancellationToken)
    {
        var previous = state.State;
        var now = time.GetUtcNow();
        var current = Resolve(name);
        var lastVersion = previous.Revisions.GetValueOrDefault(name)?.Version ?? current?.Version ?? 0;
        var revision = new AgentRevision(lastVersion + 1, current?.CreatedAt is { } created && agent is not null ? created : now, now) { Deleted = agent is null };
        var agents = new Dictionary<string, AgentDefinition>(previous.Agents, StringComparer.Ordinal);
        if (agent is null)
        {
            agents.Remove(name);
        }
        else
        {
            agents[name] = agent;
        }

        state.State = new AgentCatalogState
        {
            Agents = agents,
            Revisions = new Dictionary<string, AgentRevision>(previous.Revisions, StringComparer.Ordinal) { [name] = revision },
        };
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch
        {
            state.State = previous;
            throw;
        }

        return Resolve(name) ?? new AgentResource(new AgentDefinition(name), revision.Version) { Source = AgentSources.Api };
    }
}

/// <summary>The agents written at run time, and the revision of every name the API wrote (deleted ones included).</summary>
[GenerateSerializer, Alias("conv.AgentCatalogState")]
public sealed record AgentCatalogState
{
    /// <summary>The live agents the API wrote, by name.</summary>
    [Id(0)]
    public Dictionary<string, AgentDefinition> Agents { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Version and times of each name the API wrote; a deleted name's revision is its tombstone.</summary>
    [Id(1)]
    public Dictionary<string, AgentRevision> Revisions { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>One name's latest write through the API.</summary>
[GenerateSerializer, Immutable, Alias("conv.AgentRevision")]
public sealed record AgentRevision([Id(0)] long Version, [Id(1)] DateTimeOffset CreatedAt, [Id(2)] DateTimeOffset UpdatedAt)
{
    /// <summary>True for a tombstone: the name is deleted (configuration's agent of the name too) until it is created again.</summary>
    [Id(3)]
    public bool Deleted { get; init; }
}
