using System.Text.Json.Serialization;

namespace Conversations.Grains.Abstractions.Threads;

/// <summary>Create a thread, optionally with metadata and initial messages.</summary>
public sealed record CreateThread
{
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    public IReadOnlyList<NewMessage>? Messages { get; init; }
}

/// <summary>A message given by a client (at creation, or appended without a run).</summary>
public sealed record NewMessage(string Role, string Content);

/// <summary>Send a user message and start a run of the agent loop.</summary>
public sealed record SendMessage(string Content)
{
    /// <summary>The agent to run; null for the default agent.</summary>
    public string? Agent { get; init; }

    /// <summary>
    /// The id the run gets; null to let the grain choose. A send whose run id already exists on the thread is not
    /// run again: it answers as the first one did (a redelivered queue entry is harmless).
    /// </summary>
    public string? RunId { get; init; }

    /// <summary>A model for this run instead of the agent's; null for the agent's.</summary>
    public string? Model { get; init; }

    /// <summary>Sampling temperature for this run; null for the agent's.</summary>
    public double? Temperature { get; init; }

    /// <summary>Output token limit per model call for this run; null for the agent's.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>How many tool calls of one model turn run at once in this run (1 runs them one by one); null for the agent's.</summary>
    public int? MaxParallelTools { get; init; }
}

/// <summary>Ask for a page of a thread's messages in chronological order.</summary>
/// <param name="After">Return messages after the message with this id; null from the start.</param>
/// <param name="Limit">At most this many messages.</param>
public sealed record MessagePageRequest(string? After, int Limit);

/// <summary>A page of messages in chronological order.</summary>
public sealed record MessagePage(IReadOnlyList<ThreadMessage> Data, bool HasMore)
{
    public string? FirstId => Data.Count > 0 ? Data[0].Id : null;
    public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}

/// <summary>A public view of a thread.</summary>
public sealed record ThreadSnapshot(
    string Id,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    IReadOnlyDictionary<string, string> Metadata,
    int MessageCount,
    string? ActiveRunId,
    string? LastRunId)
{
    public static ThreadSnapshot From(ThreadGrainState state) => new(
        state.Id, state.CreatedAt, state.UpdatedAt, state.Metadata, state.MessageCount, state.ActiveRunId, state.LastRunId);
}

/// <summary>The answer to <see cref="SendMessage"/>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Accepted), "accepted")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
[JsonDerivedType(typeof(AgentNotFound), "agentNotFound")]
public abstract record SendMessageResult
{
    private SendMessageResult() { }

    /// <summary>A run started; its events follow <c>StartSequence - 1</c> on the thread stream.</summary>
    public sealed record Accepted(string RunId, string UserMessageId, long StartSequence) : SendMessageResult;

    /// <summary>Another run is active and the agent's strategy is <c>reject</c>.</summary>
    public sealed record Rejected(string ActiveRunId) : SendMessageResult;

    /// <summary>No such thread.</summary>
    public sealed record ThreadNotFound : SendMessageResult;

    /// <summary>No such agent.</summary>
    public sealed record AgentNotFound(string Agent) : SendMessageResult;
}

/// <summary>The answer to <c>AppendMessagesAsync</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Appended), "appended")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
public abstract record AppendMessagesResult
{
    private AppendMessagesResult() { }

    /// <summary>The messages were stored, in this order, with their ids and ordinals.</summary>
    public sealed record Appended(IReadOnlyList<ThreadMessage> Messages) : AppendMessagesResult;

    /// <summary>A run is active; its context must not change under it.</summary>
    public sealed record Rejected(string ActiveRunId) : AppendMessagesResult;

    /// <summary>No such thread.</summary>
    public sealed record ThreadNotFound : AppendMessagesResult;
}

/// <summary>The answer to a cancel: the run's state after it.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Cancelling), "cancelling")]
[JsonDerivedType(typeof(AlreadyEnded), "alreadyEnded")]
[JsonDerivedType(typeof(NotFound), "notFound")]
public abstract record CancelRunResult
{
    private CancelRunResult() { }

    /// <summary>The run was active; it is being cancelled and will end with <c>run.cancelled</c>.</summary>
    public sealed record Cancelling(RunRecord Run) : CancelRunResult;

    /// <summary>The run had already ended (a cancel is idempotent).</summary>
    public sealed record AlreadyEnded(RunRecord Run) : CancelRunResult;

    /// <summary>No such thread or run.</summary>
    public sealed record NotFound : CancelRunResult;
}
