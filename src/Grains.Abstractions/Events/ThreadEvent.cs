using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Abstractions.Events;

/// <summary>
/// One entry of a thread's stream. Every event carries the thread, the run it belongs to, its per-thread
/// <see cref="Sequence"/> (the SSE <c>id:</c>) and the time it was appended. The wire name of each kind is
/// in <see cref="EventTypes"/>; serialized through the base type, the JSON carries it as <c>type</c>.
/// Overrides of <see cref="Type"/> and <see cref="IsTerminal"/> repeat <c>[JsonIgnore]</c>: System.Text.Json does not
/// inherit it from the base property, and an overriding <c>Type</c> would clash with the <c>type</c> discriminator.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(RunStarted), EventTypes.RunStarted)]
[JsonDerivedType(typeof(MessageStarted), EventTypes.MessageStarted)]
[JsonDerivedType(typeof(TextDelta), EventTypes.TextDelta)]
[JsonDerivedType(typeof(ToolCallStarted), EventTypes.ToolCallStarted)]
[JsonDerivedType(typeof(ToolCallArgumentsDelta), EventTypes.ToolCallArgumentsDelta)]
[JsonDerivedType(typeof(ToolCallCompleted), EventTypes.ToolCallCompleted)]
[JsonDerivedType(typeof(ToolCallFailed), EventTypes.ToolCallFailed)]
[JsonDerivedType(typeof(AgentStatusChanged), EventTypes.AgentStatus)]
[JsonDerivedType(typeof(MessageCompleted), EventTypes.MessageCompleted)]
[JsonDerivedType(typeof(RunCompleted), EventTypes.RunCompleted)]
[JsonDerivedType(typeof(RunFailed), EventTypes.RunFailed)]
[JsonDerivedType(typeof(RunCancelled), EventTypes.RunCancelled)]
[JsonDerivedType(typeof(RunQueued), EventTypes.RunQueued)]
[JsonDerivedType(typeof(RunSteered), EventTypes.RunSteered)]
[JsonDerivedType(typeof(RunRolledBack), EventTypes.RunRolledBack)]
[JsonDerivedType(typeof(RunRequiresAction), EventTypes.RunRequiresAction)]
[GenerateSerializer, Immutable, Alias("conv.ThreadEvent")]
public abstract record ThreadEvent
{
    /// <summary>Per-thread sequence number, assigned by the thread stream when the event is appended (1, 2, 3, …).</summary>
    [Id(0)]
    public long Sequence { get; init; }

    /// <summary>The thread this event belongs to.</summary>
    [Id(1)]
    public required string ThreadId { get; init; }

    /// <summary>The run this event belongs to.</summary>
    [Id(2)]
    public required string RunId { get; init; }

    /// <summary>When the stream appended the event.</summary>
    [Id(3)]
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The wire name of this event (<c>text.delta</c>, <c>run.completed</c>, …).</summary>
    [JsonIgnore]
    public abstract string Type { get; }

    /// <summary>True for the events that end a run: completed, failed or cancelled.</summary>
    [JsonIgnore]
    public virtual bool IsTerminal => false;
}

/// <summary>A run began for a new user message.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunStarted")]
public sealed record RunStarted : ThreadEvent
{
    [Id(0)]
    public required string UserMessageId { get; init; }
    [Id(1)]
    public required string Agent { get; init; }
    [Id(2)]
    public required string Model { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.RunStarted;
}

/// <summary>The model began an assistant message.</summary>
[GenerateSerializer, Immutable, Alias("conv.MessageStarted")]
public sealed record MessageStarted : ThreadEvent
{
    [Id(0)]
    public required string MessageId { get; init; }
    [Id(1)]
    public string Role { get; init; } = MessageRoles.Assistant;
    [JsonIgnore]
    public override string Type => EventTypes.MessageStarted;
}

/// <summary>A piece of assistant text. The concatenation of a message's deltas equals its stored content.</summary>
[GenerateSerializer, Immutable, Alias("conv.TextDelta")]
public sealed record TextDelta : ThreadEvent
{
    [Id(0)]
    public required string MessageId { get; init; }
    [Id(1)]
    public required string Text { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.TextDelta;
}

/// <summary>The model began a tool call; <see cref="Index"/> is its position within the model turn.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolCallStarted")]
public sealed record ToolCallStarted : ThreadEvent
{
    [Id(0)]
    public required string MessageId { get; init; }
    [Id(1)]
    public required string CallId { get; init; }
    [Id(2)]
    public required string Name { get; init; }
    [Id(3)]
    public required int Index { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.ToolCallStarted;
}

/// <summary>A piece of a tool call's JSON arguments, as the model streams them.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolCallArgumentsDelta")]
public sealed record ToolCallArgumentsDelta : ThreadEvent
{
    [Id(0)]
    public required string CallId { get; init; }
    [Id(1)]
    public required int Index { get; init; }
    [Id(2)]
    public required string Delta { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.ToolCallArgumentsDelta;
}

/// <summary>A tool ran and returned a result.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolCallCompleted")]
public sealed record ToolCallCompleted : ThreadEvent
{
    [Id(0)]
    public required string CallId { get; init; }
    [Id(1)]
    public required string Name { get; init; }
    [Id(2)]
    public required string Arguments { get; init; }
    [Id(3)]
    public required string Result { get; init; }
    [Id(4)]
    public required long DurationMs { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.ToolCallCompleted;
}

/// <summary>A tool threw, timed out or was unknown; the error also went back to the model as the tool result.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolCallFailed")]
public sealed record ToolCallFailed : ThreadEvent
{
    [Id(0)]
    public required string CallId { get; init; }
    [Id(1)]
    public required string Name { get; init; }
    [Id(2)]
    public required string Arguments { get; init; }
    [Id(3)]
    public required string Error { get; init; }
    [Id(4)]
    public required long DurationMs { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.ToolCallFailed;
}

/// <summary>A step of the agent loop (<see cref="AgentStatuses"/>), with free-form details.</summary>
[GenerateSerializer, Immutable, Alias("conv.AgentStatusChanged")]
public sealed record AgentStatusChanged : ThreadEvent
{
    [Id(0)]
    public required string Status { get; init; }
    [Id(1)]
    public IReadOnlyDictionary<string, object?>? Details { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.AgentStatus;
}

/// <summary>An assistant message ended: its whole content, its tool calls, why it ended and what it used.</summary>
[GenerateSerializer, Immutable, Alias("conv.MessageCompleted")]
public sealed record MessageCompleted : ThreadEvent
{
    [Id(0)]
    public required string MessageId { get; init; }
    [Id(1)]
    public string Role { get; init; } = MessageRoles.Assistant;
    [Id(2)]
    public required string Content { get; init; }
    [Id(3)]
    public IReadOnlyList<ToolCallInfo> ToolCalls { get; init; } = [];
    [Id(4)]
    public required string FinishReason { get; init; }
    [Id(5)]
    public Usage? Usage { get; init; }
    /// <summary><see cref="MessageStatuses"/>: completed, or incomplete/cancelled when the run ended early.</summary>
    [Id(6)]
    public string Status { get; init; } = MessageStatuses.Completed;
    [JsonIgnore]
    public override string Type => EventTypes.MessageCompleted;
}

/// <summary>The run ended normally: the model stopped or the depth limit was reached.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunCompleted")]
public sealed record RunCompleted : ThreadEvent
{
    /// <summary><c>stop</c>, <c>length</c> or <c>max_depth</c>.</summary>
    [Id(0)]
    public required string StopReason { get; init; }
    [Id(1)]
    public Usage? Usage { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.RunCompleted;
    [JsonIgnore]
    public override bool IsTerminal => true;
}

/// <summary>The run failed; every subscriber sees why.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunFailed")]
public sealed record RunFailed : ThreadEvent
{
    [Id(0)]
    public required RunError Error { get; init; }
    [Id(1)]
    public Usage? Usage { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.RunFailed;
    [JsonIgnore]
    public override bool IsTerminal => true;
}

/// <summary>The run was cancelled; partial output is kept and marked cancelled.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunCancelled")]
public sealed record RunCancelled : ThreadEvent
{
    [Id(0)]
    public string? Reason { get; init; }
    [Id(1)]
    public Usage? Usage { get; init; }
    [JsonIgnore]
    public override string Type => EventTypes.RunCancelled;
    [JsonIgnore]
    public override bool IsTerminal => true;
}

/// <summary>
/// A message was sent while other runs were active or queued (strategy <c>enqueue</c>, or a steer its run could no
/// longer take): its run waits its turn. The message is stored when the run starts.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.RunQueued")]
public sealed record RunQueued : ThreadEvent
{
    /// <summary>The id the user message gets when the run starts.</summary>
    [Id(0)]
    public required string UserMessageId { get; init; }

    /// <summary>How many queued runs come before this one (0: next).</summary>
    [Id(1)]
    public int Position { get; init; }

    [JsonIgnore]
    public override string Type => EventTypes.RunQueued;
}

/// <summary>A user message sent with strategy <c>steer</c> joined the run (stored, and in the context of its next model call).</summary>
[GenerateSerializer, Immutable, Alias("conv.RunSteered")]
public sealed record RunSteered : ThreadEvent
{
    [Id(0)]
    public required string MessageId { get; init; }

    [JsonIgnore]
    public override string Type => EventTypes.RunSteered;
}

/// <summary>
/// A run cancelled by a message with strategy <c>rollback</c> was removed: its messages (from its user message on)
/// are no longer in the history, and the run is no longer listed. Its events stay in the stream.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.RunRolledBack")]
public sealed record RunRolledBack : ThreadEvent
{
    /// <summary>The ordinal of the first message removed; the history now ends before it.</summary>
    [Id(0)]
    public int FromOrdinal { get; init; }

    /// <summary>How many messages were removed.</summary>
    [Id(1)]
    public int RemovedMessages { get; init; }

    [JsonIgnore]
    public override string Type => EventTypes.RunRolledBack;
}

/// <summary>
/// The run waits for clients to run tools (the agent's client tools): any client submits each call's output with
/// <c>POST /threads/{thread}/runs/{run}/tool-outputs</c>; a call without one by <see cref="Deadline"/> fails.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.RunRequiresAction")]
public sealed record RunRequiresAction : ThreadEvent
{
    [Id(0)]
    public required IReadOnlyList<ToolCallInfo> Calls { get; init; }

    [Id(1)]
    public DateTimeOffset Deadline { get; init; }

    [JsonIgnore]
    public override string Type => EventTypes.RunRequiresAction;
}
