namespace Conversations.Grains.Abstractions.Threads;

/// <summary>
/// The thread grain's persistent state, apart from its messages and runs (stored as rows of their own so a
/// write never rewrites the whole history).
/// </summary>
public sealed record ThreadGrainState(string Id, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>How many messages the thread holds; the next message's ordinal is this plus one.</summary>
    public int MessageCount { get; init; }

    /// <summary>The run in progress, if any. A run still marked here when the grain activates was lost.</summary>
    public string? ActiveRunId { get; init; }

    /// <summary>The id of the last run that started.</summary>
    public string? LastRunId { get; init; }
}

/// <summary>One run of the agent loop, as stored.</summary>
public sealed record RunRecord(string Id, string ThreadId, string Agent, string UserMessageId, DateTimeOffset StartedAt)
{
    /// <summary><see cref="RunStatuses"/>.</summary>
    public string Status { get; init; } = RunStatuses.Running;
    public DateTimeOffset? EndedAt { get; init; }
    public RunError? Error { get; init; }
    public Usage? Usage { get; init; }
    /// <summary>For a completed run: <c>stop</c>, <c>length</c> or <c>max_depth</c>.</summary>
    public string? StopReason { get; init; }
    /// <summary>The sequence of the run's <c>run.started</c> event.</summary>
    public long StartSequence { get; init; }
}

/// <summary>Why a run failed: a stable code and a human-readable message without secrets.</summary>
public sealed record RunError(string Code, string Message);

public static class RunStatuses
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}
