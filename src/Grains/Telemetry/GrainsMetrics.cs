using System.Diagnostics;
using System.Diagnostics.Metrics;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;

namespace Conversations.Grains.Telemetry;

/// <summary>
/// The grains' instruments (meter <see cref="MeterName"/>): runs, model calls, tokens and tool calls, recorded where
/// they happen (the thread grain and the agent loop). Thread grains active per silo are Orleans' own
/// <c>orleans-grains</c> (in Prometheus <c>orleans_grains{grain_type="thread"}</c>). Names follow OpenTelemetry's conventions where one exists
/// (<c>gen_ai.*</c>); every instrument has its unit. The README lists them; the ops page reads them by these names.
/// </summary>
public sealed class GrainsMetrics
{
    public const string MeterName = "Conversations.Grains";

    // Seconds, from a few milliseconds (a cached first token) to minutes (a run with slow tools).
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    // OpenTelemetry's advice for gen_ai.client.token.usage.
    private static readonly long[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

    private readonly Counter<long> _runsStarted;
    private readonly Counter<long> _runsEnded;
    private readonly Histogram<double> _runDuration;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _modelCallDuration;
    private readonly Histogram<long> _tokenUsage;
    private readonly Counter<long> _modelErrors;
    private readonly Counter<long> _toolCalls;
    private readonly Histogram<double> _toolDuration;

    public GrainsMetrics(IMeterFactory meterFactory, ActiveRuns activeRuns)
    {
        var meter = meterFactory.Create(MeterName);
        _runsStarted = meter.CreateCounter<long>("conversations.runs.started", "{run}", "Runs started, by agent and model.");
        _runsEnded = meter.CreateCounter<long>(
            "conversations.runs.ended", "{run}", "Runs ended, by agent, status (completed, failed, cancelled) and reason (stop reason, error code or cancel reason).");
        _runDuration = meter.CreateHistogram("conversations.run.duration", "s", "How long runs took, from start to end, by agent and status.", advice: Seconds);
        _timeToFirstToken = meter.CreateHistogram(
            "conversations.run.time_to_first_token", "s", "From a run's start to the first piece (text or tool call) its first model call streamed.", advice: Seconds);
        _modelCallDuration = meter.CreateHistogram("gen_ai.client.operation.duration", "s", "Model calls, whole streamed turns, by model and error type.", advice: Seconds);
        _tokenUsage = meter.CreateHistogram(
            "gen_ai.client.token.usage", "{token}", "Tokens per model call, by model and token type (input, output).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets });
        _modelErrors = meter.CreateCounter<long>("conversations.model.errors", "{error}", "Model calls that failed, by model and error type (model_unavailable, model_error).");
        _toolCalls = meter.CreateCounter<long>("conversations.tool.calls", "{call}", "Tool calls, by tool and outcome.");
        _toolDuration = meter.CreateHistogram("conversations.tool.duration", "s", "How long tool calls took, by tool and outcome.", advice: Seconds);
        meter.CreateObservableUpDownCounter("conversations.runs.active", () => (long)activeRuns.Count, "{run}", "Runs executing on this silo.");
    }

    private static InstrumentAdvice<double> Seconds { get; } = new() { HistogramBucketBoundaries = SecondsBuckets };

    public void RunStarted(string agent, string model) =>
        _runsStarted.Add(1, new(Tags.Agent, agent), new(Tags.Model, model));

    /// <summary>A run ended: its reason is its stop reason (completed), error code (failed) or <paramref name="cancelReason"/>.</summary>
    public void RunEnded(RunRecord run, string model, string? cancelReason = null)
    {
        var reason = run.Status switch
        {
            RunStatuses.Completed => run.StopReason ?? "stop",
            RunStatuses.Failed => run.Error?.Code ?? RunErrorCodes.Internal,
            _ => cancelReason ?? "cancelled",
        };
        var agent = new KeyValuePair<string, object?>(Tags.Agent, run.Agent);
        var status = new KeyValuePair<string, object?>(Tags.RunStatus, run.Status);
        _runsEnded.Add(1, agent, new(Tags.Model, model), status, new(Tags.RunReason, reason));
        if (run.EndedAt - run.StartedAt is { } duration && duration >= TimeSpan.Zero)
        {
            _runDuration.Record(duration.TotalSeconds, agent, status);
        }
    }

    public void FirstToken(string agent, string model, TimeSpan elapsed) =>
        _timeToFirstToken.Record(elapsed.TotalSeconds, new(Tags.Agent, agent), new(Tags.Model, model));

    /// <summary>One model call (a streamed turn): its duration, its tokens, and its error type when it failed.</summary>
    public void ModelCall(string model, TimeSpan duration, Usage? usage, string? errorType)
    {
        var modelTag = new KeyValuePair<string, object?>(Tags.Model, model);
        var operation = new KeyValuePair<string, object?>(Tags.Operation, "chat");
        if (errorType is null)
        {
            _modelCallDuration.Record(duration.TotalSeconds, modelTag, operation);
        }
        else
        {
            _modelCallDuration.Record(duration.TotalSeconds, modelTag, operation, new(Tags.ErrorType, errorType));
            _modelErrors.Add(1, modelTag, new(Tags.ErrorType, errorType));
        }

        if (usage is not null)
        {
            _tokenUsage.Record(usage.PromptTokens, modelTag, operation, new(Tags.TokenType, "input"));
            _tokenUsage.Record(usage.CompletionTokens, modelTag, operation, new(Tags.TokenType, "output"));
        }
    }

    public void ToolCall(string tool, string outcome, TimeSpan duration)
    {
        var tags = new TagList { { Tags.ToolName, tool }, { Tags.ToolOutcome, outcome } };
        _toolCalls.Add(1, tags);
        _toolDuration.Record(duration.TotalSeconds, tags);
    }

    /// <summary>Attribute names: OpenTelemetry's where it has one, ours (<c>conversations.*</c>) otherwise.</summary>
    public static class Tags
    {
        public const string Agent = "gen_ai.agent.name";
        public const string Model = "gen_ai.request.model";
        public const string Operation = "gen_ai.operation.name";
        public const string TokenType = "gen_ai.token.type";
        public const string ErrorType = "error.type";
        public const string ToolName = "gen_ai.tool.name";
        public const string ToolOutcome = "conversations.tool.outcome";
        public const string RunStatus = "conversations.run.status";
        public const string RunReason = "conversations.run.reason";
    }
}

/// <summary>
/// The grains' spans (source <see cref="Name"/>): a run (<c>invoke_agent</c>, a child of the grain call that started
/// it, so of the HTTP request), each model call (<c>chat</c>, with its first token as an event) and each tool call
/// (<c>execute_tool</c>). Spans exist only when something listens (an OpenTelemetry exporter, a test's listener).
/// </summary>
public static class GrainsActivities
{
    public const string Name = "Conversations.Grains";

    public static ActivitySource Source { get; } = new(Name);
}
