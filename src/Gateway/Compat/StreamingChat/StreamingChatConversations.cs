using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>
/// Seed 003's server keeps one conversation per agent. Here a conversation is a thread: the agent's key maps to a
/// thread id, <c>chat-{agent}</c> at first and a fresh <c>chat-{agent}-{guid}</c> after each <c>reset_history</c>.
/// The map and the display names given to <c>POST /agents</c> live in the cluster (an agent-conversation grain per
/// agent), so every gateway answers the same and a restart keeps them. On a server with authentication each caller
/// has a conversation of its own with each agent (<c>chat-{agent}:{owner hash}</c>): a thread belongs to its owner.
/// </summary>
public sealed partial class StreamingChatConversations(IGrainFactory grains)
{
    public const int MaxAgentNameLength = 64;

    /// <summary>The thread that holds <paramref name="caller"/>'s conversation with <paramref name="agent"/> now.</summary>
    public Task<string> ThreadForAsync(string agent, Caller caller, CancellationToken cancellationToken) =>
        Grain(ConversationKey(agent, caller)).GetThreadAsync(cancellationToken);

    /// <summary>Starts a new conversation of <paramref name="caller"/> with <paramref name="agent"/> and returns its thread.</summary>
    public Task<string> ResetAsync(string agent, Caller caller, CancellationToken cancellationToken) =>
        Grain(ConversationKey(agent, caller)).ResetAsync(cancellationToken);

    public Task<string?> DisplayNameAsync(string agent, CancellationToken cancellationToken) => Grain(agent).GetDisplayNameAsync(cancellationToken);

    public Task SetDisplayNameAsync(string agent, string? displayName, CancellationToken cancellationToken) =>
        Grain(agent).SetDisplayNameAsync(displayName, cancellationToken);

    private IAgentConversationGrain Grain(string agent) => grains.GetGrain<IAgentConversationGrain>(agent);

    /// <summary>
    /// The conversation grain's key: the agent's name on an open server (one conversation, as the seed has); with an
    /// owner, <c>{agent}:{16 hex digits of the owner's SHA-256}</c> — ':' is in no agent name, and the thread id it
    /// makes stays within thread ids' characters whatever the owner's subject holds.
    /// </summary>
    private static string ConversationKey(string agent, Caller caller) =>
        caller.Owner is { } owner ? $"{agent}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(owner)))[..16]}" : agent;

    /// <summary>Checks a chat request's fields; the errors name the field.</summary>
    public static Dictionary<string, string[]> Validate(ChatRequest? request)
    {
        var errors = new Dictionary<string, string[]>();
        if (request is null)
        {
            errors["message"] = ["A JSON body with 'message' is required."];
            return errors;
        }

        if (string.IsNullOrWhiteSpace(request.Message))
        {
            errors["message"] = ["message is required and must not be empty."];
        }
        else if (MessageText.Problem(request.Message) is { } problem)
        {
            errors["message"] = [$"message {problem}"];
        }

        if (request.Agent is not null && !AgentNamePattern().IsMatch(request.Agent))
        {
            errors["agent"] = [$"agent must be 1-{MaxAgentNameLength} characters: letters, digits, '_', '-' or '.'."];
        }

        if (request.ThreadId is not null && !ThreadIdPattern().IsMatch(request.ThreadId))
        {
            errors["thread_id"] = ["thread_id must be 1-128 characters: letters, digits, '_', '-', '.' or ':'."];
        }
        else if (request.ThreadId is not null && request.ResetHistory == true)
        {
            errors["reset_history"] = ["reset_history cannot start a given thread_id over; omit thread_id to start a new conversation with the agent."];
        }

        return errors;
    }

    /// <summary>Checks an agent key (the <c>agent_name</c> path segment, the <c>agent</c> field).</summary>
    public static bool IsValidAgentName(string agent) => AgentNamePattern().IsMatch(agent);

    /// <summary>
    /// Starts a run for a validated request: on <c>thread_id</c> when given, else on the agent's conversation
    /// (a new one when <c>reset_history</c> is true).
    /// </summary>
    public async Task<ChatStart> StartAsync(ChatRequest request, Caller caller, ThreadRunner runner, IAgentCatalog agents, CancellationToken cancellationToken)
    {
        var agent = request.Agent ?? AgentDefinition.DefaultName;
        if (await agents.GetAsync(agent, cancellationToken) is null)
        {
            return new ChatStart.Invalid(new Dictionary<string, string[]> { ["agent"] = [$"No agent is named '{agent}'."] });
        }

        var threadId = request.ThreadId ?? (request.ResetHistory == true ? await ResetAsync(agent, caller, cancellationToken) : await ThreadForAsync(agent, caller, cancellationToken));
        var command = new SendMessage(request.Message!)
        {
            Agent = agent,
            MaxParallelTools = request.ParallelTools == false ? 1 : null,
        };
        var start = await runner.StartAsync(caller, threadId, [], command, cancellationToken);
        return start switch
        {
            RunStart.Started started => new ChatStart.Started(agent, started.ThreadId, started.RunId, started.Events.ProjectAsync(agent, CancellationToken.None)),
            RunStart.Rejected rejected => new ChatStart.Busy(agent, rejected.ThreadId, rejected.ActiveRunId),
            RunStart.LimitExceeded exceeded => new ChatStart.Invalid(new Dictionary<string, string[]> { ["thread_id"] = [exceeded.Limit.Detail] }),
            RunStart.AgentNotFound missing => new ChatStart.Invalid(new Dictionary<string, string[]> { ["agent"] = [$"No agent is named '{missing.Agent}'."] }),
            // A thread_id of someone else's thread.
            _ => new ChatStart.NotFound(threadId),
        };
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex AgentNamePattern();

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex ThreadIdPattern();
}

/// <summary>The outcome of <see cref="StreamingChatConversations.StartAsync"/>.</summary>
public abstract record ChatStart
{
    private ChatStart() { }

    /// <summary>A field is wrong (an unknown agent).</summary>
    public sealed record Invalid(Dictionary<string, string[]> Errors) : ChatStart;

    /// <summary>The <c>thread_id</c> names a thread the caller may not see (answered as none).</summary>
    public sealed record NotFound(string ThreadId) : ChatStart
    {
        public string Detail => $"thread_id: no thread has id '{ThreadId}'.";
    }

    /// <summary>The thread already has an active run (the thread's <c>reject</c> strategy).</summary>
    public sealed record Busy(string Agent, string ThreadId, string ActiveRunId) : ChatStart
    {
        public string Detail => $"Run '{ActiveRunId}' is still active on thread '{ThreadId}'; wait for it to end or cancel it.";
    }

    /// <summary>The run started; <paramref name="Events"/> are its events in seed 003's form, ending with its terminal one.</summary>
    public sealed record Started(string Agent, string ThreadId, string RunId, IAsyncEnumerable<ChatStreamEvent> Events) : ChatStart;
}
