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

    /// <summary>The agent the thread's runs use when a send names none (pinned); null for the default agent.</summary>
    [Id(2)]
    public string? Agent { get; init; }

    /// <summary>
    /// Who the thread belongs to (a user's subject or an API key's id); null for an open server's threads. Only its
    /// owner (or an admin) may see or touch it: the gateway answers anyone else as if it did not exist.
    /// </summary>
    [Id(3)]
    public string? Owner { get; init; }
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

    /// <summary>What this message does while another run is active (<see cref="Agents.MultitaskStrategies"/>); null for the agent's.</summary>
    [Id(7)]
    public string? MultitaskStrategy { get; init; }

    /// <summary>Refuse the message (<see cref="SendMessageResult.Conflict"/>) unless the thread's last event has this sequence.</summary>
    [Id(8)]
    public long? ExpectedLastSequence { get; init; }

    /// <summary>Refuse the message unless the thread's last message has this id.</summary>
    [Id(9)]
    public string? ExpectedLastMessageId { get; init; }

    /// <summary>An absolute http(s) URL the run's final state is POSTed to when it ends (signed, retried).</summary>
    [Id(10)]
    public string? Webhook { get; init; }
}

/// <summary>A run waiting its turn (strategy <c>enqueue</c>); part of the thread's state, so it survives deactivation and a silo's death.</summary>
[GenerateSerializer, Immutable, Alias("conv.QueuedRun")]
public sealed record QueuedRun(
    [Id(0)] string RunId,
    [Id(1)] string UserMessageId,
    [Id(2)] string Agent,
    [Id(3)] SendMessage Command,
    [Id(4)] DateTimeOffset QueuedAt)
{
    /// <summary>
    /// The run this message was sent to steer (strategy <c>steer</c>): it joins that run at its next model call, and
    /// is removed from the queue then. If that run ends first, the entry stays and runs in its turn as a run of its own.
    /// </summary>
    [Id(5)]
    public string? Steers { get; init; }

    /// <summary>The run as <c>GET …/runs/{id}</c> shows it while it waits.</summary>
    public RunRecord ToRecord(string threadId) => new(RunId, threadId, Agent, UserMessageId, QueuedAt) { Status = RunStatuses.Queued, Webhook = Command.Webhook };
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
    /// <summary>True when the request's <c>After</c> is no message of the thread (the page is then empty).</summary>
    [Id(2)]
    public bool UnknownAfter { get; init; }

    public string? FirstId => Data.Count > 0 ? Data[0].Id : null;
    public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}

/// <summary>A page of a thread's runs, newest first.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunPage")]
public sealed record RunPage([Id(0)] IReadOnlyList<RunRecord> Data, [Id(1)] bool HasMore);

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
    /// <summary>The runs waiting their turn, next first.</summary>
    [Id(7)]
    public IReadOnlyList<string> QueuedRunIds { get; init; } = [];

    /// <summary>The sequence of the thread's last event (0 for none).</summary>
    [Id(8)]
    public long LastSequence { get; init; }

    /// <summary>The agent pinned at creation (used when a send names none); null for the default agent.</summary>
    [Id(9)]
    public string? Agent { get; init; }

    /// <summary>Who the thread belongs to (<see cref="CreateThread.Owner"/>); null for an open server's threads.</summary>
    [Id(10)]
    public string? Owner { get; init; }

    public static ThreadSnapshot From(string id, ThreadGrainState state) => new(
        id, state.CreatedAt, state.UpdatedAt, state.Metadata, state.MessageCount, state.ActiveRunId, state.LastRunId)
    {
        QueuedRunIds = state.Queue.Select(q => q.RunId).ToArray(),
        Agent = state.Agent,
        Owner = state.Owner,
    };
}

/// <summary>The answer to <see cref="SendMessage"/>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Accepted), "accepted")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
[JsonDerivedType(typeof(AgentNotFound), "agentNotFound")]
[JsonDerivedType(typeof(Conflict), "conflict")]
[JsonDerivedType(typeof(Invalid), "invalid")]
[JsonDerivedType(typeof(LimitExceeded), "limitExceeded")]
[GenerateSerializer, Immutable, Alias("conv.SendMessageResult")]
public abstract record SendMessageResult
{
    private SendMessageResult() { }

    /// <summary>
    /// The message was taken: a run started (<see cref="Status"/> <c>running</c>), was queued (<c>queued</c>), or the
    /// message joined the active run <see cref="RunId"/> (<see cref="Steered"/>). The run's events follow
    /// <c>StartSequence - 1</c> on the thread stream.
    /// </summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Accepted")]
    public sealed record Accepted([Id(0)] string RunId, [Id(1)] string UserMessageId, [Id(2)] long StartSequence) : SendMessageResult
    {
        /// <summary><c>running</c> or <c>queued</c> (<see cref="RunStatuses"/>).</summary>
        [Id(3)]
        public string Status { get; init; } = RunStatuses.Running;

        /// <summary>True when the message joined the active run (strategy <c>steer</c>) rather than starting one.</summary>
        [Id(4)]
        public bool Steered { get; init; }
    }

    /// <summary>Another run is active (or queued) and the strategy is <c>reject</c>, or the queue is full.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Rejected")]
    public sealed record Rejected([Id(0)] string ActiveRunId) : SendMessageResult
    {
        /// <summary>Why, when it is not the <c>reject</c> strategy (e.g. the queue is full).</summary>
        [Id(1)]
        public string? Reason { get; init; }
    }

    /// <summary>The thread moved on: its last event or message is not the one the sender expected.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Conflict")]
    public sealed record Conflict([Id(0)] string Field, [Id(1)] long LastSequence, [Id(2)] string? LastMessageId) : SendMessageResult;

    /// <summary>A field of the send cannot be honoured here (e.g. a webhook on a cluster without a signing key).</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.Invalid")]
    public sealed record Invalid([Id(0)] string Field, [Id(1)] string Message) : SendMessageResult;

    /// <summary>No such thread.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.ThreadNotFound")]
    public sealed record ThreadNotFound : SendMessageResult;

    /// <summary>No such agent.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.AgentNotFound")]
    public sealed record AgentNotFound([Id(0)] string Agent) : SendMessageResult;

    /// <summary>The message would take the thread over one of its storage limits (<see cref="ThreadLimit"/>); nothing was stored.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SendMessageResult.LimitExceeded")]
    public sealed record LimitExceeded([Id(0)] ThreadLimit Limit) : SendMessageResult;
}

/// <summary>A thread storage limit a write would exceed: its setting, its value, what the thread holds, and words for a client.</summary>
[GenerateSerializer, Immutable, Alias("conv.ThreadLimit")]
public sealed record ThreadLimit([Id(0)] string Setting, [Id(1)] long Maximum, [Id(2)] long Current, [Id(3)] string Detail);

/// <summary>The answer to <c>AppendMessagesAsync</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Appended), "appended")]
[JsonDerivedType(typeof(Rejected), "rejected")]
[JsonDerivedType(typeof(ThreadNotFound), "threadNotFound")]
[JsonDerivedType(typeof(LimitExceeded), "limitExceeded")]
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

    /// <summary>The messages would take the thread over one of its storage limits; none was stored.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AppendMessagesResult.LimitExceeded")]
    public sealed record LimitExceeded([Id(0)] ThreadLimit Limit) : AppendMessagesResult;
}

/// <summary>The answer to a cancel: the run's state after it.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Cancelling), "cancelling")]
[JsonDerivedType(typeof(AlreadyEnded), "alreadyEnded")]
[JsonDerivedType(typeof(Dequeued), "dequeued")]
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

    /// <summary>The run was queued; it was taken off the queue and will never start.</summary>
    [GenerateSerializer, Immutable, Alias("conv.CancelRunResult.Dequeued")]
    public sealed record Dequeued([Id(0)] RunRecord Run) : CancelRunResult;

    /// <summary>No such thread or run.</summary>
    [GenerateSerializer, Immutable, Alias("conv.CancelRunResult.NotFound")]
    public sealed record NotFound : CancelRunResult;
}

/// <summary>A client's output for one call of a client tool.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolOutput")]
public sealed record ToolOutput([Id(0)] string ToolCallId, [Id(1)] string Output);

/// <summary>The answer to a submission of client tool outputs.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(Accepted), "accepted")]
[JsonDerivedType(typeof(RunNotFound), "runNotFound")]
[JsonDerivedType(typeof(NotWaiting), "notWaiting")]
[GenerateSerializer, Immutable, Alias("conv.SubmitToolOutputsResult")]
public abstract record SubmitToolOutputsResult
{
    private SubmitToolOutputsResult() { }

    /// <summary>The outputs were taken; the run goes on once it has every output it waits for.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SubmitToolOutputsResult.Accepted")]
    public sealed record Accepted([Id(0)] RunRecord Run) : SubmitToolOutputsResult;

    /// <summary>No such thread or run.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SubmitToolOutputsResult.RunNotFound")]
    public sealed record RunNotFound : SubmitToolOutputsResult;

    /// <summary>The run waits for none of these calls (unknown ids, answered already, or the run is not waiting); nothing was taken.</summary>
    [GenerateSerializer, Immutable, Alias("conv.SubmitToolOutputsResult.NotWaiting")]
    public sealed record NotWaiting([Id(0)] IReadOnlyList<string> ToolCallIds, [Id(1)] string Reason) : SubmitToolOutputsResult;
}
