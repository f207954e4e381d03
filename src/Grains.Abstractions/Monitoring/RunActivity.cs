using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Abstractions.Monitoring;

/// <summary>
/// A run's lifecycle as thread grains report it on the <see cref="RunActivity.StreamNamespace"/> Orleans stream of
/// their silo (stream key: the silo's identity), for grains that watch the cluster (the ops monitor). Delivery is
/// by Orleans streams, whose polling latency is harmless here; clients get a run's events by push, not this way.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.RunActivity")]
public sealed record RunActivity(
    [Id(0)] string Kind,
    [Id(1)] string ThreadId,
    [Id(2)] string RunId,
    [Id(3)] string Agent,
    [Id(4)] string Model,
    [Id(5)] string Silo,
    [Id(6)] DateTimeOffset At)
{
    /// <summary>The stream provider that carries run activity.</summary>
    public const string StreamProvider = "activity";

    /// <summary>The stream namespace; the stream key is the silo that runs the thread.</summary>
    public const string StreamNamespace = "run-activity";

    /// <summary>Tokens the run used (when it ended).</summary>
    [Id(7)]
    public Usage? Usage { get; init; }

    /// <summary>Why a failed run failed.</summary>
    [Id(8)]
    public RunError? Error { get; init; }

    /// <summary>How long the run took (when it ended).</summary>
    [Id(9)]
    public TimeSpan? Duration { get; init; }
}

/// <summary>The kinds of <see cref="RunActivity"/>: a run started, or ended one of three ways.</summary>
public static class RunActivityKinds
{
    public const string Started = "started";
    public const string Completed = RunStatuses.Completed;
    public const string Failed = RunStatuses.Failed;
    public const string Cancelled = RunStatuses.Cancelled;
}

/// <summary>
/// What one silo's runs have done since the monitor started: active runs, counts by outcome, tokens, recent
/// failures. Keyed by the silo's identity (the key of its run-activity stream).
/// </summary>
[Alias("conv.IRunMonitorGrain")]
public interface IRunMonitorGrain : IGrainWithStringKey
{
    [Alias("GetSnapshot")]
    Task<RunMonitorSnapshot> GetSnapshotAsync(CancellationToken cancellationToken = default);
}

/// <summary>A silo's run activity.</summary>
[GenerateSerializer, Immutable, Alias("conv.RunMonitorSnapshot")]
public sealed record RunMonitorSnapshot(
    [Id(0)] string Silo,
    [Id(1)] IReadOnlyList<RunActivity> ActiveRuns,
    [Id(2)] long Started,
    [Id(3)] long Completed,
    [Id(4)] long Failed,
    [Id(5)] long Cancelled,
    [Id(6)] long PromptTokens,
    [Id(7)] long CompletionTokens,
    [Id(8)] IReadOnlyList<RunActivity> RecentFailures);
