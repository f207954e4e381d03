using Conversations.Grains.Abstractions;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Telemetry;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Validation;

namespace Conversations.Grains.Agents;

/// <summary>What a run reports back to its thread: events to publish and messages to store, in order.</summary>
public interface IRunSink
{
    /// <summary>Publishes an event on the thread stream.</summary>
    ValueTask PublishAsync(ThreadEvent threadEvent, CancellationToken cancellationToken);

    /// <summary>Stores messages at the end of the thread's history (the sink assigns ordinals).</summary>
    Task AppendMessagesAsync(IReadOnlyList<ThreadMessage> messages, CancellationToken cancellationToken);

    /// <summary>
    /// How a message cut off by cancellation is marked: <c>cancelled</c> when a client cancelled the run,
    /// <c>incomplete</c> when the run was interrupted (it then fails).
    /// </summary>
    string CancelledMessageStatus { get; }

    /// <summary>
    /// The user messages sent to steer the run since the last call (strategy <c>steer</c>), stored in the history
    /// after everything so far, each announced with <c>run.steered</c>; empty when there are none. The loop calls it
    /// at each model-call boundary, and once more before it ends, so a steer is never acknowledged and dropped.
    /// </summary>
    Task<IReadOnlyList<ThreadMessage>> JoinSteeredAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Announces <c>run.requires_action</c> for calls of client tools and returns, per call id, the output a client
    /// will submit; the loop waits for each at most <see cref="ClientToolTimeout"/>.
    /// </summary>
    Task<IReadOnlyDictionary<string, Task<string>>> RequestToolOutputsAsync(IReadOnlyList<ToolCallInfo> calls, CancellationToken cancellationToken);

    /// <summary>How long a client tool call waits for its output.</summary>
    TimeSpan ClientToolTimeout { get; }
}

/// <summary>How a run ended when it did not throw.</summary>
/// <param name="StopReason"><c>stop</c>, <c>length</c>, <c>content_filter</c> or <c>max_depth</c>.</param>
/// <param name="Usage">Tokens used by every model call of the run.</param>
public sealed record AgentLoopResult(string StopReason, Usage? Usage);

/// <summary>
/// The agent loop of one run: model turn (streamed) → tool calls (in parallel, bounded, each with a timeout) →
/// model turn again … until the model stops or the depth limit is hit. It publishes every step through the
/// <see cref="IRunSink"/> and stores each message as it completes. Cancellation and model failures propagate as
/// exceptions after the partial output has been stored and marked.
/// </summary>
public sealed class AgentLoop(IChatModel model, ToolRegistry tools, TimeProvider time)
{
    /// <summary>
    /// The token budget of the history each model call is sent (<see cref="HistoryBudget.Trim"/>: older turns are left
    /// out, never a tool call without its results, never the instructions or the latest user message); null, the
    /// default, sends the whole history. The thread grain sets it from the run's agent
    /// (<see cref="AgentDefinition.HistoryBudget"/>). Only what the model is sent is trimmed, never the stored history.
    /// </summary>
    public int? HistoryBudgetTokens { get; init; }

    /// <summary>Where the loop records its model calls, first token, tokens and tool calls; null records nothing.</summary>
    public GrainsMetrics? Metrics { get; init; }

    /// <summary>Runs the loop over <paramref name="history"/> (which ends with the user message that started the run).</summary>
    public async Task<AgentLoopResult> RunAsync(
        string threadId,
        string runId,
        AgentDefinition agent,
        IReadOnlyList<ThreadMessage> history,
        IRunSink sink,
        CancellationToken cancellationToken,
        int firstDepth = 1)
    {
        var context = new List<ThreadMessage>(history);
        var agentTools = tools.ForAgent(agent);
        var definitions = agentTools.Select(t => t.Definition).ToList();
        foreach (var clientTool in agent.ClientTools ?? [])
        {
            using var schema = JsonDocument.Parse(clientTool.Parameters);
            definitions.Add(new ToolDefinition(clientTool.Name, clientTool.Description, schema.RootElement.Clone()));
        }

        Usage? usage = null;

        // A resumed run goes on counting the tool calls it made before (its stored messages).
        var toolCalls = history.Where(m => m.RunId == runId).Sum(m => m.ToolCalls?.Count ?? 0);

        // Time to first token: from the loop's start to the first piece its first model call streams (a resumed run has none).
        var loopStarted = time.GetTimestamp();
        Action? onFirstPiece = firstDepth <= 1 ? () => Metrics?.FirstToken(agent.Name, model.Name, time.GetElapsedTime(loopStarted)) : null;

        // A resumed run goes on counting its model calls from where it was.
        for (var depth = Math.Max(1, firstDepth); ; depth++)
        {
            await sink.PublishAsync(
                new AgentStatusChanged
                {
                    ThreadId = threadId,
                    RunId = runId,
                    Status = depth == 1 && firstDepth <= 1 ? AgentStatuses.StartingGeneration : AgentStatuses.ContinuingGeneration,
                    Details = new Dictionary<string, object?> { ["depth"] = depth, ["model"] = model.Name },
                },
                cancellationToken);

            var messages = HistoryBudget.Trim(agent.Instructions, HistoryForModel.Prepare(context), HistoryBudgetTokens);
            var request = new ModelRequest(agent.Instructions, messages, definitions)
            {
                Temperature = agent.Temperature,
                MaxTokens = agent.MaxTokens,
                ThreadId = threadId,
                RunId = runId,
            };
            var turn = await StreamTurnAsync(threadId, runId, request, sink, cancellationToken, onFirstPiece);
            onFirstPiece = null;
            usage = Usage.Add(usage, turn.Message.Usage);
            context.Add(turn.Message);

            var calls = turn.Message.ToolCalls ?? [];
            if (calls.Count == 0)
            {
                // Messages that steered the run while the model answered get an answer of their own.
                var steered = depth < agent.MaxDepth ? await sink.JoinSteeredAsync(cancellationToken) : [];
                if (steered.Count == 0)
                {
                    return new AgentLoopResult(turn.Message.FinishReason ?? "stop", usage);
                }

                context.AddRange(steered);
                continue;
            }

            toolCalls += calls.Count;
            if (toolCalls > agent.MaxToolCalls)
            {
                // None of this turn's calls runs: the run fails; the stored calls have no results (a later run's
                // history gives the model a synthesised result for each, HistoryForModel).
                throw new RunLimitException(
                    RunErrorCodes.ToolCallLimit,
                    $"The run asked for {toolCalls} tool calls; agent '{agent.Name}' allows at most {agent.MaxToolCalls} per run (maxToolCalls).");
            }

            await sink.PublishAsync(
                new AgentStatusChanged
                {
                    ThreadId = threadId,
                    RunId = runId,
                    Status = AgentStatuses.ToolCallDetected,
                    Details = new Dictionary<string, object?>
                    {
                        ["depth"] = depth,
                        ["toolCalls"] = calls.Select(c => c.Name).ToArray(),
                        ["maxParallelTools"] = agent.MaxParallelTools,
                    },
                },
                cancellationToken);

            var (results, failed) = await ExecuteToolsAsync(threadId, runId, agent, agentTools, calls, sink, cancellationToken);
            context.AddRange(results);

            await sink.PublishAsync(
                new AgentStatusChanged
                {
                    ThreadId = threadId,
                    RunId = runId,
                    Status = AgentStatuses.ToolsExecuted,
                    Details = new Dictionary<string, object?>
                    {
                        ["depth"] = depth,
                        ["succeeded"] = results.Count - failed,
                        ["failed"] = failed,
                    },
                },
                cancellationToken);

            if (depth >= agent.MaxDepth)
            {
                await sink.PublishAsync(
                    new AgentStatusChanged
                    {
                        ThreadId = threadId,
                        RunId = runId,
                        Status = AgentStatuses.MaxDepthReached,
                        Details = new Dictionary<string, object?> { ["depth"] = depth, ["maxDepth"] = agent.MaxDepth },
                    },
                    cancellationToken);
                return new AgentLoopResult("max_depth", usage);
            }

            // The model-call boundary: messages that steered the run during the tool calls join its context.
            context.AddRange(await sink.JoinSteeredAsync(cancellationToken));
        }
    }

    private sealed record TurnResult(ThreadMessage Message);

    private async Task<TurnResult> StreamTurnAsync(
        string threadId, string runId, ModelRequest request, IRunSink sink, CancellationToken cancellationToken, Action? onFirstPiece)
    {
        using var span = GrainsActivities.Source.StartActivity($"chat {model.Name}", ActivityKind.Client);
        span?.SetTag(GrainsMetrics.Tags.Operation, "chat");
        span?.SetTag(GrainsMetrics.Tags.Model, model.Name);
        var callStarted = time.GetTimestamp();
        void FirstPiece()
        {
            if (onFirstPiece is not null)
            {
                span?.AddEvent(new ActivityEvent("gen_ai.first_token"));
                onFirstPiece();
                onFirstPiece = null;
            }
        }

        var messageId = Ids.NewMessageId();
        var startedAt = time.GetUtcNow();
        var text = new StringBuilder();
        var calls = new SortedDictionary<int, ToolCallBuilder>();
        string? finishReason = null;
        Usage? usage = null;

        await sink.PublishAsync(new MessageStarted { ThreadId = threadId, RunId = runId, MessageId = messageId }, cancellationToken);
        try
        {
            await foreach (var update in model.StreamAsync(request, cancellationToken).WithCancellation(cancellationToken))
            {
                switch (update)
                {
                    case ModelTextDelta { Text.Length: > 0 } delta when WithoutNul(delta.Text) is { Length: > 0 } piece:
                        FirstPiece();
                        text.Append(piece);
                        await sink.PublishAsync(
                            new TextDelta { ThreadId = threadId, RunId = runId, MessageId = messageId, Text = piece },
                            cancellationToken);
                        break;
                    case ModelToolCallDelta delta:
                        FirstPiece();
                        await OnToolCallDeltaAsync(threadId, runId, messageId, calls, delta, sink, cancellationToken);
                        break;
                    case ModelFinished finished:
                        finishReason = finished.FinishReason;
                        usage = finished.Usage;
                        break;
                }
            }
        }
        catch (Exception ex)
        {
            if (ex is ModelException failure)
            {
                Metrics?.ModelCall(model.Name, time.GetElapsedTime(callStarted), usage, failure.Code);
                span?.SetStatus(ActivityStatusCode.Error, failure.Code);
                span?.SetTag(GrainsMetrics.Tags.ErrorType, failure.Code);
            }

            if (text.Length > 0 || calls.Count > 0)
            {
                // Keep what arrived: the partial message is stored and announced, marked by how the run ends.
                var status = ex is OperationCanceledException ? sink.CancelledMessageStatus : MessageStatuses.Incomplete;
                var partial = BuildMessage(messageId, runId, startedAt, text, calls, status, finishReason ?? status, usage, complete: false);
                await StoreAndAnnounceAsync(threadId, runId, partial, sink, CancellationToken.None);
            }

            throw;
        }

        Metrics?.ModelCall(model.Name, time.GetElapsedTime(callStarted), usage, null);
        span?.SetTag("gen_ai.response.finish_reasons", new[] { finishReason ?? "stop" });
        if (usage is not null)
        {
            span?.SetTag("gen_ai.usage.input_tokens", usage.PromptTokens);
            span?.SetTag("gen_ai.usage.output_tokens", usage.CompletionTokens);
        }

        var message = BuildMessage(messageId, runId, startedAt, text, calls, MessageStatuses.Completed, finishReason ?? "stop", usage, complete: true);
        await StoreAndAnnounceAsync(threadId, runId, message, sink, cancellationToken);
        return new TurnResult(message);
    }

    private static async Task StoreAndAnnounceAsync(
        string threadId, string runId, ThreadMessage message, IRunSink sink, CancellationToken cancellationToken)
    {
        await sink.AppendMessagesAsync([message], cancellationToken);
        await sink.PublishAsync(
            new MessageCompleted
            {
                ThreadId = threadId,
                RunId = runId,
                MessageId = message.Id,
                Content = message.Content,
                ToolCalls = message.ToolCalls ?? [],
                FinishReason = message.FinishReason ?? "stop",
                Usage = message.Usage,
                Status = message.Status,
            },
            cancellationToken);
    }

    private static ThreadMessage BuildMessage(
        string messageId, string runId, DateTimeOffset createdAt, StringBuilder text,
        SortedDictionary<int, ToolCallBuilder> calls, string status, string finishReason, Usage? usage, bool complete)
    {
        // A call whose name never arrived cannot be run or replayed; an unfinished message keeps only named calls.
        var toolCalls = calls.Values.Where(c => c.Name is not null).Select(c => c.Build()).ToList();
        if (complete && toolCalls.Count > 0 && finishReason == "stop")
        {
            finishReason = "tool_calls";
        }

        return new ThreadMessage(messageId, 0, MessageRoles.Assistant, text.ToString(), createdAt)
        {
            RunId = runId,
            ToolCalls = toolCalls.Count > 0 ? toolCalls : null,
            Status = status,
            FinishReason = finishReason,
            Usage = usage,
        };
    }

    private static async Task OnToolCallDeltaAsync(
        string threadId, string runId, string messageId, SortedDictionary<int, ToolCallBuilder> calls,
        ModelToolCallDelta delta, IRunSink sink, CancellationToken cancellationToken)
    {
        if (!calls.TryGetValue(delta.Index, out var call))
        {
            call = new ToolCallBuilder(delta.Index, string.IsNullOrEmpty(delta.Id) ? Ids.NewToolCallId() : delta.Id);
            calls.Add(delta.Index, call);
        }

        if (call.Name is null && !string.IsNullOrEmpty(delta.Name))
        {
            call.Name = delta.Name;
            await sink.PublishAsync(
                new ToolCallStarted { ThreadId = threadId, RunId = runId, MessageId = messageId, CallId = call.Id, Name = call.Name, Index = call.Index },
                cancellationToken);
            if (call.Arguments.Length > 0)
            {
                // Argument text that arrived before the name is released now, in order.
                await sink.PublishAsync(
                    new ToolCallArgumentsDelta { ThreadId = threadId, RunId = runId, CallId = call.Id, Index = call.Index, Delta = call.Arguments.ToString() },
                    cancellationToken);
            }
        }

        if (!string.IsNullOrEmpty(delta.ArgumentsDelta) && WithoutNul(delta.ArgumentsDelta) is { Length: > 0 } arguments)
        {
            delta = delta with { ArgumentsDelta = arguments };
            call.Arguments.Append(delta.ArgumentsDelta);
            if (call.Name is not null)
            {
                await sink.PublishAsync(
                    new ToolCallArgumentsDelta { ThreadId = threadId, RunId = runId, CallId = call.Id, Index = call.Index, Delta = delta.ArgumentsDelta },
                    cancellationToken);
            }
        }
    }

    private async Task<(IReadOnlyList<ThreadMessage> Results, int Failed)> ExecuteToolsAsync(
        string threadId, string runId, AgentDefinition agent, IReadOnlyList<ITool> agentTools, IReadOnlyList<ToolCallInfo> calls, IRunSink sink,
        CancellationToken cancellationToken)
    {
        using var gate = new SemaphoreSlim(Math.Max(1, agent.MaxParallelTools));
        var own = agentTools.ToDictionary(t => t.Definition.Name, StringComparer.Ordinal);

        // The agent's tools as the run began; an agent given every tool also reaches one that appeared since (an MCP server listed later).
        ITool? FindTool(string name) => own.GetValueOrDefault(name) ?? (agent.Tools is null ? tools.Find(name) : null);
        var clientTools = (agent.ClientTools ?? []).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var clientCalls = calls.Where(c => clientTools.Contains(c.Name)).ToList();
        var clientOutputs = clientCalls.Count > 0
            ? await sink.RequestToolOutputsAsync(clientCalls, cancellationToken)
            : new Dictionary<string, Task<string>>();
        var outcomes = await Task.WhenAll(calls.Select(async call =>
        {
            var client = clientOutputs.TryGetValue(call.Id, out var output);
            if (!client)
            {
                await gate.WaitAsync(cancellationToken);
            }

            try
            {
                using var span = GrainsActivities.Source.StartActivity($"execute_tool {call.Name}");
                span?.SetTag(GrainsMetrics.Tags.Operation, "execute_tool");
                span?.SetTag(GrainsMetrics.Tags.ToolName, call.Name);
                span?.SetTag("gen_ai.tool.call.id", call.Id);
                var started = time.GetTimestamp();
                var outcome = client
                    ? await AwaitClientOutputAsync(call, output!, sink.ClientToolTimeout, cancellationToken)
                    : await InvokeToolAsync(call, FindTool(call.Name), agent.ToolTimeout, cancellationToken);
                outcome = outcome with { Result = outcome.Result is null ? null : WithoutNul(outcome.Result), Error = outcome.Error is null ? null : WithoutNul(outcome.Error) };
                // A name the model made up is no label (it could be anything): it counts as _OTHER.
                Metrics?.ToolCall(outcome.Outcome == ToolOutcomes.UnknownTool ? "_OTHER" : call.Name, outcome.Outcome, time.GetElapsedTime(started));
                span?.SetTag(GrainsMetrics.Tags.ToolOutcome, outcome.Outcome);
                if (outcome.Error is not null)
                {
                    span?.SetStatus(ActivityStatusCode.Error, outcome.Outcome);
                }

                // Recorded before anyone hears of it: a run resumed after a crash sees the result and never runs the call again.
                var message = new ThreadMessage(Ids.NewMessageId(), 0, MessageRoles.Tool, outcome.Error is null ? outcome.Result! : ToolResults.FormatError(outcome.Error), time.GetUtcNow())
                {
                    RunId = runId,
                    ToolCallId = call.Id,
                    Name = call.Name,
                };
                await sink.AppendMessagesAsync([message], cancellationToken);
                await sink.PublishAsync(
                    outcome.Error is null
                        ? new ToolCallCompleted { ThreadId = threadId, RunId = runId, CallId = call.Id, Name = call.Name, Arguments = call.Arguments, Result = outcome.Result!, DurationMs = outcome.DurationMs }
                        : new ToolCallFailed { ThreadId = threadId, RunId = runId, CallId = call.Id, Name = call.Name, Arguments = call.Arguments, Error = outcome.Error, DurationMs = outcome.DurationMs },
                    cancellationToken);
                return (Message: message, Failed: outcome.Error is not null);
            }
            finally
            {
                if (!client)
                {
                    gate.Release();
                }
            }
        }));

        // In the order the model asked for them (they were stored as each ended).
        return ([.. outcomes.Select(o => o.Message)], outcomes.Count(o => o.Failed));
    }

    private sealed record ToolOutcome(string? Result, string? Error, long DurationMs, string Outcome = ToolOutcomes.Success);

    /// <summary>
    /// Text from the model or a tool without NUL characters (U+0000), which no PostgreSQL text can hold: dropped before
    /// anyone hears of them, so what is streamed is what is stored, in both topologies.
    /// </summary>
    private static string WithoutNul(string text) => text.Contains('\0', StringComparison.Ordinal) ? text.Replace("\0", "", StringComparison.Ordinal) : text;

    /// <summary>A client tool call: the output a client submits, or an error for the model when none comes in time.</summary>
    private async Task<ToolOutcome> AwaitClientOutputAsync(ToolCallInfo call, Task<string> output, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        try
        {
            var result = await output.WaitAsync(timeout, time, cancellationToken);
            return new ToolOutcome(result, null, (long)time.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (TimeoutException)
        {
            return new ToolOutcome(
                null,
                $"No client submitted the output of '{call.Name}' within {timeout.TotalSeconds:0.###} s.",
                (long)time.GetElapsedTime(started).TotalMilliseconds,
                ToolOutcomes.Timeout);
        }
    }

    private async Task<ToolOutcome> InvokeToolAsync(
        ToolCallInfo call, ITool? tool, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        long Elapsed() => (long)time.GetElapsedTime(started).TotalMilliseconds;

        if (tool is null)
        {
            return new ToolOutcome(null, $"Unknown tool '{call.Name}'.", Elapsed(), ToolOutcomes.UnknownTool);
        }

        JsonElement arguments;
        try
        {
            using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(call.Arguments) ? "{}" : call.Arguments);
            arguments = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            return new ToolOutcome(null, $"The arguments of '{call.Name}' are not valid JSON: {ex.Message}", Elapsed(), ToolOutcomes.InvalidArguments);
        }

        // Arguments that do not match the tool's schema never reach the tool: the model reads what is wrong instead.
        if (ToolArguments.Validate(tool.Definition, arguments) is { } invalid)
        {
            return new ToolOutcome(null, invalid, Elapsed(), ToolOutcomes.InvalidArguments);
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        try
        {
            // Off the grain's scheduler: a tool may block or burn CPU without holding up the thread's turns.
            var result = await Task.Run(() => tool.InvokeAsync(arguments, timeoutSource.Token).AsTask(), timeoutSource.Token)
                .WaitAsync(timeout, time, cancellationToken);
            return new ToolOutcome(result, null, Elapsed());
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
        {
            return new ToolOutcome(null, $"Tool '{call.Name}' timed out after {timeout.TotalSeconds:0.###} s.", Elapsed(), ToolOutcomes.Timeout);
        }
        catch (ToolException ex)
        {
            return new ToolOutcome(null, ex.Message, Elapsed(), ToolOutcomes.Error);
        }
        catch (Exception ex)
        {
            return new ToolOutcome(null, $"Tool '{call.Name}' failed: {ex.Message}", Elapsed(), ToolOutcomes.Error);
        }
        finally
        {
            // A tool that outlived its timeout is told to stop before its token source goes away.
            await timeoutSource.CancelAsync();
        }
    }

    /// <summary>How a tool call ended (the <c>conversations.tool.outcome</c> of its metrics and span).</summary>
    private static class ToolOutcomes
    {
        public const string Success = "success";
        public const string Error = "error";
        public const string Timeout = "timeout";
        public const string UnknownTool = "unknown_tool";
        public const string InvalidArguments = "invalid_arguments";
    }

    private sealed class ToolCallBuilder(int index, string id)
    {
        public int Index { get; } = index;
        public string Id { get; } = id;
        public string? Name { get; set; }
        public StringBuilder Arguments { get; } = new();
        public ToolCallInfo Build() => new(Id, Name!, Arguments.ToString());
    }
}
