using System.Text.Json.Serialization;

namespace Conversations.Grains.Abstractions.Threads;

/// <summary>Create a thread, optionally with metadata and initial messages.</summary>
[GenerateSerializer, Immutable, Alias("conv.CreateThread")]
public sealed record CreateThread
{
    [Id(0)]
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    [Id(1)]
    public IReadOnlyList<NewMessage>? Messages { get; init; }
}

/// <summary>A message given by a client (at creation, or appended without a run).</summary>
[GenerateSerializer, Immutable, Alias("conv.NewMessage")]
public sealed record NewMessage([Id(0)] string Role, [Id(1)] string Content);

/// <summary>Send a user message and start a run of the agent loop.</summary>
[GenerateSerializer, Immutable, Alias("conv.SendMessage")]
public sealed record SendMessage([Id(0)] string Content)
{
    /// <summary>The agent to run; null for the default agent.</summary>
    [Id(1)]
    public string? Agent { get; init; }

    /// <summary>
    /// The id the run gets; null to let the grain choose. A send whose run id already exists on the thread is not
    /// run again: it answers as the first one did (a retried send is harmless).
    /// </summary>
    [Id(2)]
    public string? RunId { get; init; }

    /// <summary>A model for this run instead of the agent's; null for the agent's.</summary>
    [Id(3)]
    public string? Model { get; init; }

    /// <summary>Sampling temperature for this run; null for the agent's.</summary>
    [Id(4)]
    public double? Temperature { get; init; }

    /// <summary>Output token limit per model call for this run; null for the agent's.</summary>
    [Id(5)]
    public int? MaxTokens { get; init; }

    /// <summary>How many tool calls of one model turn run at once in this run (1 runs them one by one); null for the agent's.</summary>
    [Id(6)]
    public int? MaxParallelTools { get; init; }
}

/// <summary>Ask for a page of a thread's messages in chronological order.</summary>
/// <param name="After">Return messages after the message with this id; null from the start.</param>
/// <param name="Limit">At most this many messages.</param>
[GenerateSerializer, Immutable, Alias("conv.MessagePageRequest")]
public sealed record MessagePageRequest([Id(0)] string? After, [Id(1)] int Limit);

/// <summary>A page of messages in chronological order.</summary>
[GenerateSerializer, Immutable, Alias("conv.MessagePage")]
public sealed record MessagePage([Id(0)] IReadOnlyList<ThreadMessage> Data, [Id(1)] bool HasMore)
{
    public string? FirstId => Data.Count > 0 ? Data[0].Id : null;
    public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}

/// <summary>A public view of a thread.</summary>
[GenerateSerializer, Immutable, Alias("conv.ThreadSnapshot")]
public sealed record ThreadSnapshot(
    [Id(0)] string Id,
    [Id(1)] DateTimeOffset CreatedAt,
    [Id(2)] DateTimeOffset UpdatedAt,
    [Id(3)] IReadOnlyDictionary<string, string> Metadata,
    [Id(4)] int MessageCount,
    [Id(5)] string? ActiveRunId,
    [Id(6)] string? LastRunId)
{
    public static ThreadSnapshot From(string id, ThreadGrainState state) => new(
        id, state.CreatedAt, state.UpdatedAt, state.Metadata, state.MessageCount, state.ActiveRunId, state.LastRunId);
}

/// <summary>The answer to <see cref="SendMessage"/>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Accepted), "accepted")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
[JsonDerivedType(typeof(AgentNotFound), "agentNotFound")]
[GenerateSerializer, Immutable, Alias("conv.SendMessageResult")]
public abstract record SendMessageResult
{
    private SendMessageResult() { }

    /// <summary>A run started; its events follow <c>StartSequence - 1</c> on the thread stream.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Accepted")]
    public sealed record Accepted([Id(0)] string RunId, [Id(1)] string UserMessageId, [Id(2)] long StartSequence) : SendMessageResult;

    /// <summary>Another run is active and the agent's strategy is <c>reject</c>.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Rejected")]
    public sealed record Rejected([Id(0)] string ActiveRunId) : SendMessageResult;

    /// <summary>No such thread.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.ThreadNotFound")]
    public sealed record ThreadNotFound : SendMessageResult;

    /// <summary>No such agent.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.AgentNotFound")]
    public sealed record AgentNotFound([Id(0)] string Agent) : SendMessageResult;
}

/// <summary>The answer to <c>AppendMessagesAsync</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Appended), "appended")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
[GenerateSerializer, Immutable, Alias("conv.AppendMessagesResult")]
public abstract record AppendMessagesResult
{
    private AppendMessagesResult() { }

    /// <summary>The messages were stored, in this order, with their ids and ordinals.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AppendMessagesResult.Appended")]
    public sealed record Appended([Id(0)] IReadOnlyList<ThreadMessage> Messages) : AppendMessagesResult;

    /// <summary>A run is active; its context must not change under it.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AppendMessagesResult.Rejected")]
    public sealed record Rejected([Id(0)] string ActiveRunId) : AppendMessagesResult;

    /// <summary>No such thread.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AppendMessagesResult.ThreadNotFound")]
    public sealed record ThreadNotFound : AppendMessagesResult;
}

/// <summary>The answer to a cancel: the run's state after it.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Cancelling), "cancelling")]
[JsonDerivedType(typeof(AlreadyEnded), "alreadyEnded")]
[JsonDerivedType(typeof(NotFound), "notFound")]
[GenerateSerializer, Immutable, Alias("conv.CancelRunResult")]
public abstract record CancelRunResult
{
    private CancelRunResult() { }

    /// <summary>The run was active; it is being cancelled and will end with <c>run.cancelled</c>.</summary>
    [GenerateSerializer, Immutable, Alias("conv.CancelRunResult.Cancelling")]
    public sealed record Cancelling([Id(0)] RunRecord Run) : CancelRunResult;

    /// <summary>The run had already ended (a cancel is idempotent).</summary>
    [GenerateSerializer, Immutable, Alias("conv.CancelRunResult.AlreadyEnded")]
    public sealed record AlreadyEnded([Id(0)] RunRecord Run) : CancelRunResult;

    /// <summary>No such thread or run.</summary>
    [GenerateSerializer, Immutable, Alias("conv.CancelRunResult.NotFound")]
    public sealed record NotFound : CancelRunResult;
}
