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

    /// <summary>
    /// How long the run took (when it ended); the time to its first token (<see cref="RunActivityKinds.FirstToken"/>);
    /// the tool call's duration (<see cref="RunActivityKinds.ToolCall"/>).
    /// </summary>
    [Id(9)]
    public TimeSpan? Duration { get; init; }

    /// <summary>The tool called (<see cref="RunActivityKinds.ToolCall"/>).</summary>
    [Id(10)]
    public string? Tool { get; init; }

    /// <summary>
    /// Completion tokens the run produced since its last report (<see cref="RunActivityKinds.Tokens"/>): estimated
    /// while a message streams, then corrected, possibly by a negative number, to the model's count when it ends.
    /// </summary>
    [Id(11)]
    public long Tokens { get; init; }
}

/// <summary>The kinds of <see cref="RunActivity"/>: a run started, or ended one of three ways.</summary>
public static class RunActivityKinds
{
    public const string Started = "started";
    public const string Completed = RunStatuses.Completed;
    public const string Failed = RunStatuses.Failed;
    public const string Cancelled = RunStatuses.Cancelled;

    /// <summary>The run's first output (text or a tool call) streamed; <see cref="RunActivity.Duration"/> is the time to it.</summary>
    public const string FirstToken = "first_token";

    /// <summary>A tool call ended; <see cref="RunActivity.Error"/> is set when it failed.</summary>
    public const string ToolCall = "tool_call";

    /// <summary>The run streamed <see cref="RunActivity.Tokens"/> more completion tokens.</summary>
    public const string Tokens = "tokens";

    /// <summary>Whether the kind ends a run.</summary>
    public static bool IsEnd(string kind) => kind is Completed or Failed or Cancelled;
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
    [Id(8)] IReadOnlyList<RunActivity> RecentFailures)
{
    /// <summary>Tool calls that ended, and how many of them failed.</summary>
    [Id(9)]
    public long ToolCalls { get; init; }

    [Id(10)]
    public long ToolFailures { get; init; }

    /// <summary>The most recent failed tool calls, newest first.</summary>
    [Id(11)]
    public IReadOnlyList<RunActivity> RecentToolFailures { get; init; } = [];

    /// <summary>
    /// Times to first token of the runs that streamed one within <see cref="RunMonitorWindows.TimeToFirstToken"/>, in
    /// milliseconds, oldest first (the most recent <see cref="RunMonitorWindows.MaxSamples"/> at most): raw samples,
    /// so percentiles over several silos are computed over all of theirs.
    /// </summary>
    [Id(12)]
    public IReadOnlyList<double> TimesToFirstTokenMs { get; init; } = [];

    /// <summary>Completion tokens streamed within the last <see cref="RunMonitorWindows.TokenRate"/>.</summary>
    [Id(13)]
    public long RecentTokens { get; init; }
}

/// <summary>The windows the run monitor's rates and percentiles cover.</summary>
public static class RunMonitorWindows
{
    /// <summary>Time to first token: percentiles over the last five minutes.</summary>
    public static readonly TimeSpan TimeToFirstToken = TimeSpan.FromMinutes(5);

    /// <summary>Tokens per second: over the last ten seconds.</summary>
    public static readonly TimeSpan TokenRate = TimeSpan.FromSeconds(10);

    /// <summary>At most this many time-to-first-token samples per silo.</summary>
    public const int MaxSamples = 4096;
}
