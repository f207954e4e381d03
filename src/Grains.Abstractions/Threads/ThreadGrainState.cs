namespace Conversations.Grains.Abstractions.Threads;

/// <summary>
/// The thread grain's compact persistent state (through <c>IPersistentState</c>, with an ETag). Messages, runs and
/// events are rows of their own in append-only tables, so a write never rewrites the history.
/// </summary>
[GenerateSerializer, Alias("conv.ThreadState")]
public sealed record ThreadGrainState
{
    /// <summary>The thread id; null while the thread does not exist.</summary>
    [Id(0)]
    public string? Id { get; init; }

    [Id(1)]
    public DateTimeOffset CreatedAt { get; init; }

    [Id(2)]
    public DateTimeOffset UpdatedAt { get; init; }

    [Id(3)]
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>How many messages the thread holds; the next message's ordinal is this plus one.</summary>
    [Id(4)]
    public int MessageCount { get; init; }

    /// <summary>The run in progress, if any. A run still marked here when the grain activates was lost.</summary>
    [Id(5)]
    public string? ActiveRunId { get; init; }

    /// <summary>The id of the last run that started.</summary>
    [Id(6)]
    public string? LastRunId { get; init; }

    /// <summary>
    /// The highest event sequence this thread may use before it reserves more. Sequences are handed out live before
    /// their events are durable; a new activation continues after this number, so none is ever reused after a crash.
    /// </summary>
    [Id(7)]
    public long ReservedSequence { get; init; }

    /// <summary>Runs waiting their turn, next first (strategy <c>enqueue</c>).</summary>
    /// <remarks>An array, not an interface: the ADO.NET storage records the runtime type, and a collection expression's synthesized type is not one it may read.</remarks>
    [Id(8)]
    public QueuedRun[] Queue { get; init; } = [];

    /// <summary>The agent pinned at creation; null for the default agent.</summary>
    [Id(9)]
    public string? Agent { get; init; }

    /// <summary>Who the thread belongs to (<see cref="CreateThread.Owner"/>); null for an open server's threads.</summary>
    [Id(10)]
    public string? Owner { get; init; }

    /// <summary>
    /// UTF-8 bytes of the content and tool-call arguments of the messages stored on the thread (for
    /// <c>Limits:MaxBytesPerThread</c>); counted as they are stored, and not lowered by a rollback. A thread stored
    /// before the count existed starts at 0.
    /// </summary>
    [Id(11)]
    public long ContentBytes { get; init; }
}

/// <summary>One run of the agent loop, as stored.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunRecord")]
public sealed record RunRecord([Id(0)] string Id, [Id(1)] string ThreadId, [Id(2)] string Agent, [Id(3)] string UserMessageId, [Id(4)] DateTimeOffset StartedAt)
{
    /// <summary><see cref="RunStatuses"/>.</summary>
    [Id(5)]
    public string Status { get; init; } = RunStatuses.Running;

    [Id(6)]
    public DateTimeOffset? EndedAt { get; init; }

    [Id(7)]
    public RunError? Error { get; init; }

    [Id(8)]
    public Usage? Usage { get; init; }

    /// <summary>For a completed run: <c>stop</c>, <c>length</c> or <c>max_depth</c>.</summary>
    [Id(9)]
    public string? StopReason { get; init; }

    /// <summary>The sequence of the run's <c>run.started</c> event.</summary>
    [Id(10)]
    public long StartSequence { get; init; }

    /// <summary>Where the run's final state is POSTed when it ends; null for none.</summary>
    [Id(11)]
    public string? Webhook { get; init; }

    /// <summary>The model the run calls (its agent's, or the send's override).</summary>
    [Id(12)]
    public string? Model { get; init; }

    /// <summary>How many times the run was resumed on another activation after the one running it was lost.</summary>
    [Id(13)]
    public int Resumes { get; init; }
}

/// <summary>Why a run failed: a stable code and a human-readable message without secrets.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunError")]
public sealed record RunError([Id(0)] string Code, [Id(1)] string Message);

public static class RunStatuses
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    /// <summary>Waiting for the runs before it (strategy <c>enqueue</c>); not yet started.</summary>
    public const string Queued = "queued";
}
