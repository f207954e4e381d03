using Conversations.Grains.Abstractions.Agents;

namespace Conversations.Grains.Agents;

/// <summary>
/// Seed 003's conversation of one agent: <c>chat-{agent}</c> at first, a fresh <c>chat-{agent}-{guid}</c> after
/// each reset; and the agent's display name. Stored, so every gateway answers the same and restarts keep it.
/// </summary>
[GrainType("agent-conversation")]
public sealed class AgentConversationGrain(
    [PersistentState("conversation", AgentCatalogGrain.StorageName)] IPersistentState<AgentConversationState> state) : Grain, IAgentConversationGrain
{
    private string Agent => this.GetPrimaryKeyString();

    public Task<string> GetThreadAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(state.State.ThreadId ?? $"chat-{Agent}");

    public async Task<string> ResetAsync(CancellationToken cancellationToken = default)
    {
        var threadId = $"chat-{Agent}-{Guid.CreateVersion7():N}";
        await WriteAsync(state.State with { ThreadId = threadId }, cancellationToken);
        return threadId;
    }

    public Task<string?> GetDisplayNameAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(state.State.DisplayName);

    public Task SetDisplayNameAsync(string? displayName, CancellationToken cancellationToken = default) =>
        state.State.DisplayName == displayName ? Task.CompletedTask : WriteAsync(state.State with { DisplayName = displayName }, cancellationToken);

    private Task WriteAsync(AgentConversationState next, CancellationToken cancellationToken) => state.WriteOrRestoreAsync(next, cancellationToken);
}

/// <summary>Which thread holds an agent's conversation now (null: the first one) and its display name.</summary>
[GenerateSerializer, Alias("conv.AgentConversationState")]
public sealed record AgentConversationState
{
    [Id(0)]
    public string? ThreadId { get; init; }

    [Id(1)]
    public string? DisplayName { get; init; }
}
