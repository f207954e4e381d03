using Orleans.Concurrency;

namespace Conversations.Grains.Abstractions.Agents;

/// <summary>
/// The cluster's agents: those the silos' configuration declares, overlaid with those added or replaced at run time
/// (stored, so they survive restarts). One grain, key <see cref="Key"/>, so every gateway and silo sees the same set.
/// </summary>
[Alias("conv.IAgentCatalogGrain")]
public interface IAgentCatalogGrain : IGrainWithStringKey
{
    /// <summary>The key of the one catalog.</summary>
    const string Key = "agents";

    /// <summary>The agent with this name, or null.</summary>
    [Alias("Get"), ReadOnly]
    Task<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every agent, ordered by name.</summary>
    [Alias("List"), ReadOnly]
    Task<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds an agent or replaces the one with the same name; runs already started keep the definition they began with.</summary>
    [Alias("Upsert")]
    Task UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default);

    /// <summary>The agent with this name with its version and source, or null (none, or deleted).</summary>
    [Alias("GetResource"), ReadOnly]
    Task<AgentResource?> GetResourceAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every agent with its version and source, ordered by name.</summary>
    [Alias("ListResources"), ReadOnly]
    Task<IReadOnlyList<AgentResource>> ListResourcesAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates an agent; <see cref="AgentWriteResult.AlreadyExists"/> when one of that name exists.</summary>
    [Alias("Create")]
    Task<AgentWriteResult> CreateAsync(AgentDefinition agent, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces an existing agent; <see cref="AgentWriteResult.NotFound"/> when there is none, and
    /// <see cref="AgentWriteResult.VersionMismatch"/> when <paramref name="expectedVersion"/> is given and is not its version.
    /// </summary>
    [Alias("Replace")]
    Task<AgentWriteResult> ReplaceAsync(AgentDefinition agent, long? expectedVersion, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes an agent, leaving a tombstone that hides a configured agent of the name until it is created again;
    /// <see cref="AgentWriteResult.Protected"/> for <c>default</c>.
    /// </summary>
    [Alias("Delete")]
    Task<AgentWriteResult> DeleteAsync(string name, long? expectedVersion, CancellationToken cancellationToken = default);
}

/// <summary>
/// Seed 003's "one conversation per agent": which thread holds an agent's conversation now, and the display name
/// given to the agent. Keyed by agent name; stored, so every gateway answers the same.
/// </summary>
[Alias("conv.IAgentConversationGrain")]
public interface IAgentConversationGrain : IGrainWithStringKey
{
    /// <summary>The thread that holds the agent's conversation now.</summary>
    [Alias("GetThread")]
    Task<string> GetThreadAsync(CancellationToken cancellationToken = default);

    /// <summary>Starts a new conversation and returns its thread.</summary>
    [Alias("Reset")]
    Task<string> ResetAsync(CancellationToken cancellationToken = default);

    /// <summary>The agent's display name, or null.</summary>
    [Alias("GetDisplayName"), ReadOnly]
    Task<string?> GetDisplayNameAsync(CancellationToken cancellationToken = default);

    /// <summary>Sets or (with null) clears the agent's display name.</summary>
    [Alias("SetDisplayName")]
    Task SetDisplayNameAsync(string? displayName, CancellationToken cancellationToken = default);
}
