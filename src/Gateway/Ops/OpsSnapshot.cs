using Conversations.Grains.Abstractions.Monitoring;

namespace Conversations.Gateway.Ops;

/// <summary>
/// The cluster as the ops dashboard shows it, taken at <c>At</c> by gateway <c>Gateway</c>; <c>Problems</c> names
/// the parts that could not be read this time (the rest is still shown).
/// </summary>
public sealed record OpsSnapshot(
    DateTimeOffset At,
    string Gateway,
    IReadOnlyList<OpsSilo> Silos,
    OpsRuns Runs,
    IReadOnlyList<OpsActiveRun> ActiveRuns,
    IReadOnlyList<OpsError> RecentErrors,
    IReadOnlyList<OpsGateway> Gateways,
    IReadOnlyList<OpsGrainType> Grains,
    IReadOnlyList<string> Problems);

/// <summary>A silo: its status in the membership table and, while it is active, its runtime statistics.</summary>
public sealed record OpsSilo(
    string Address,
    string Name,
    string Status,
    DateTimeOffset StartedAt,
    DateTimeOffset? LastAlive,
    int? Activations,
    int? RecentlyUsedActivations,
    double? CpuPercent,
    long? MemoryUsedBytes,
    long? TotalPhysicalMemoryBytes,
    bool? Overloaded);

/// <summary>
/// Runs across the cluster's active silos (since each silo's monitor started): counts by outcome, tokens, the token
/// rate over <see cref="RunMonitorWindows.TokenRate"/>, time to first token over
/// <see cref="RunMonitorWindows.TimeToFirstToken"/>, tool calls and failures.
/// </summary>
public sealed record OpsRuns(
    int Active,
    int ActiveThreads,
    long Started,
    long Completed,
    long Failed,
    long Cancelled,
    long PromptTokens,
    long CompletionTokens,
    double TokensPerSecond,
    double? TimeToFirstTokenP50Ms,
    double? TimeToFirstTokenP95Ms,
    int TimeToFirstTokenSamples,
    long ToolCalls,
    long ToolFailures);

/// <summary>A run in progress, with its age.</summary>
public sealed record OpsActiveRun(string ThreadId, string RunId, string Agent, string Model, string Silo, DateTimeOffset StartedAt, double AgeSeconds);

/// <summary>A failed run or tool call, newest first, with the run's address.</summary>
public sealed record OpsError(DateTimeOffset At, string Kind, string ThreadId, string RunId, string? Tool, string Code, string Message, string RunUrl);

/// <summary>A gateway, as it last reported itself, with its subscribers in all.</summary>
public sealed record OpsGateway(
    string Id,
    string Mode,
    string Host,
    IReadOnlyList<string> Addresses,
    DateTimeOffset StartedAt,
    DateTimeOffset ReportedAt,
    int Subscribers,
    int Watchers,
    IReadOnlyList<WatchedThread> Threads);

/// <summary>Activations of one grain type across the cluster.</summary>
public sealed record OpsGrainType(string Type, int Activations);
