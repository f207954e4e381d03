using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Conversations.Gateway.Errors;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.OpenAi;

/// <summary>How one response projects a run: the chunk envelope and which optional chunks it carries.</summary>
public sealed record ChunkStreamSettings
{
    /// <summary>The <c>id</c> of every content chunk (<see cref="ChatCompletionProjection.CompletionIdFor"/>).</summary>
    public required string CompletionId { get; init; }

    /// <summary>The <c>created</c> of every chunk (Unix seconds).</summary>
    public required long Created { get; init; }

    /// <summary>The model to report until <c>run.started</c> names the one that runs.</summary>
    public required string Model { get; init; }

    /// <summary>When set, every chunk carries it as <c>thread_id</c> (seed 004's <c>SSEChunk.thread_id</c>).</summary>
    public string? ThreadId { get; init; }

    /// <summary>Start with OpenAI's role chunk <c>delta: {"role":"assistant","content":""}</c>.</summary>
    public bool RoleChunk { get; init; } = true;

    /// <summary>Seed 004: project <c>agent.status</c> events as <c>role: "system"</c> chunks.</summary>
    public bool StatusChunks { get; init; }

    /// <summary><c>stream_options.include_usage</c>: a last chunk with <c>choices: []</c> and the run's usage.</summary>
    public bool UsageChunk { get; init; }
}

/// <summary>What the projection makes of an event: a chunk, or the run's failure in OpenAI's error shape.</summary>
public abstract record ProjectedItem
{
    private ProjectedItem() { }

    public sealed record Chunk(ChatCompletionChunk Value) : ProjectedItem;

    public sealed record Failure(OpenAiErrorResponse Value) : ProjectedItem;
}

/// <summary>
/// The one projection of a run's thread events onto OpenAI <c>chat.completion.chunk</c>s, shared by the OpenAI and
/// Langbase dialects. A run may hold several model turns; they become one completion: every turn's text and
/// tool-call deltas in order, tool calls of later turns indexed after those of earlier turns, and one finish chunk
/// at the end of the run. Stateful: one instance per response.
/// </summary>
public sealed class ChatCompletionProjection(ChunkStreamSettings settings)
{
    /// <summary>The <c>system_fingerprint</c> of every chunk.</summary>
    public const string SystemFingerprint = "fp_conversations";

    private readonly Dictionary<string, int> _callIndexes = new(StringComparer.Ordinal);
    private readonly List<Dictionary<string, object?>> _toolResults = [];
    private string _model = settings.Model;
    private int _turnBase;
    private int _nextIndex;

    /// <summary>The model the run uses (known from <c>run.started</c>).</summary>
    public string Model => _model;

    /// <summary><c>chatcmpl-</c> and the run id's unique part: one id per response, stable for the run.</summary>
    public static string CompletionIdFor(string runId) =>
        "chatcmpl-" + (runId.StartsWith("run_", StringComparison.Ordinal) ? runId[4..] : runId);

    /// <summary>OpenAI's finish reason for how a run stopped.</summary>
    /// <remarks>
    /// Every tool call in the stream was already executed by the server, so <c>tool_calls</c> (which tells a client to
    /// run them) is never sent: a run stopped by its depth limit after tool calls finishes <c>stop</c>.
    /// </remarks>
    public static string FinishReasonFor(string stopReason) => stopReason switch
    {
        "length" => "length",
        "content_filter" => "content_filter",
        _ => "stop",
    };

    /// <summary>The chunks (or the failure) one event becomes, in order.</summary>
    public IEnumerable<ProjectedItem> Apply(ThreadEvent threadEvent)
    {
        switch (threadEvent)
        {
            case RunStarted started:
                _model = started.Model;
                if (settings.RoleChunk)
                {
                    yield return Chunk(new ChunkDelta { Role = MessageRoles.Assistant, Content = string.Empty });
                }

                break;
            case AgentStatusChanged status when settings.StatusChunks:
                yield return StatusChunk(status);
                break;
            case MessageStarted:
                _turnBase = _nextIndex;
                break;
            case TextDelta text:
                // Seed 004's text chunks carry the role on every chunk, so its clients can tell them from status chunks.
                yield return Chunk(new ChunkDelta { Role = settings.StatusChunks ? MessageRoles.Assistant : null, Content = text.Text });
                break;
            case ToolCallStarted call:
                var index = _turnBase + call.Index;
                _callIndexes[call.CallId] = index;
                _nextIndex = Math.Max(_nextIndex, index + 1);
                yield return Chunk(new ChunkDelta
                {
                    ToolCalls = [new ToolCallChunk { Index = index, Id = call.CallId, Function = new FunctionChunk { Name = call.Name, Arguments = string.Empty } }],
                });
                break;
            case ToolCallArgumentsDelta arguments:
                yield return Chunk(new ChunkDelta
                {
                    ToolCalls =
                    [
                        new ToolCallChunk
                        {
                            Index = _callIndexes.TryGetValue(arguments.CallId, out var known) ? known : _turnBase + arguments.Index,
                            Function = new FunctionChunk { Arguments = arguments.Delta },
                        },
                    ],
                });
                break;
            case ToolCallCompleted done when settings.StatusChunks:
                _toolResults.Add(new() { ["tool_call_id"] = done.CallId, ["name"] = done.Name, ["result"] = done.Result });
                break;
            case ToolCallFailed failed when settings.StatusChunks:
                _toolResults.Add(new() { ["tool_call_id"] = failed.CallId, ["name"] = failed.Name, ["error"] = failed.Error });
                break;
            case RunCompleted completed:
                var usage = completed.Usage ?? new Usage(0, 0, 0);
                var finish = Chunk(new ChunkDelta { Role = settings.StatusChunks ? MessageRoles.Assistant : null }, FinishReasonFor(completed.StopReason));
                yield return new ProjectedItem.Chunk(finish.Value with { Usage = usage });
                if (settings.UsageChunk)
                {
                    yield return new ProjectedItem.Chunk(Envelope(settings.CompletionId, []) with { Usage = usage });
                }

                break;
            case RunFailed failed:
                yield return Failure(failed.Error.Message, failed.Error.Code);
                break;
            case RunCancelled:
                yield return Failure("The run was cancelled before it finished; its partial output is kept in the thread.", RunFailureStatus.RunCancelled);
                break;
        }
    }

    private ProjectedItem.Chunk Chunk(ChunkDelta delta, string? finishReason = null) =>
        new(Envelope(settings.CompletionId, [new ChunkChoice { Index = 0, Delta = delta, FinishReason = finishReason }]));

    private ProjectedItem.Chunk StatusChunk(AgentStatusChanged status)
    {
        var metadata = new Dictionary<string, object?> { ["status"] = status.Status };
        foreach (var (key, value) in status.Details ?? new Dictionary<string, object?>())
        {
            metadata[JsonNamingPolicy.SnakeCaseLower.ConvertName(key)] = value;
        }

        if (status.Status == AgentStatuses.ToolsExecuted && _toolResults.Count > 0)
        {
            metadata["tool_results"] = _toolResults.ToArray();
            _toolResults.Clear();
        }

        var id = "status_" + settings.CompletionId["chatcmpl-".Length..] + "_" + status.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new(Envelope(id, [new ChunkChoice { Index = 0, Delta = new ChunkDelta { Role = MessageRoles.System, Metadata = metadata } }]));
    }

    private ChatCompletionChunk Envelope(string id, IReadOnlyList<ChunkChoice> choices) => new()
    {
        Id = id,
        Created = settings.Created,
        Model = _model,
        SystemFingerprint = SystemFingerprint,
        Choices = choices,
        ThreadId = settings.ThreadId,
    };

    private static ProjectedItem.Failure Failure(string message, string code) =>
        new(new OpenAiErrorResponse(new OpenAiError(message, "server_error", null, code)));
}

/// <summary>Runs a <see cref="ChatCompletionProjection"/> over a run's events: as SSE, or folded into one completion.</summary>
public static class ChatCompletionStreams
{
    /// <summary>The SSE items of a streaming response: <c>data: {chunk}</c> … then <c>data: [DONE]</c>, or the error and the end.</summary>
    public static async IAsyncEnumerable<SseItem<string>> ToChunkSseAsync(
        this IAsyncEnumerable<ThreadEvent> events, ChatCompletionProjection projection, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            foreach (var item in projection.Apply(threadEvent))
            {
                switch (item)
                {
                    case ProjectedItem.Chunk chunk:
                        yield return new SseItem<string>(JsonSerializer.Serialize(chunk.Value, OpenAiJson.Options));
                        break;
                    case ProjectedItem.Failure failure:
                        // OpenAI's SDKs raise on a data line holding an "error" object; no [DONE] follows a failure.
                        yield return new SseItem<string>(JsonSerializer.Serialize(failure.Value, OpenAiJson.Options));
                        yield break;
                }
            }

            if (threadEvent.IsTerminal)
            {
                yield return new SseItem<string>("[DONE]");
                yield break;
            }
        }
    }

    /// <summary>
    /// Folds the same chunks a streaming client would receive into one <c>chat.completion</c>: the text of every
    /// turn, every tool call, the finish reason and usage. Returns the failure instead when the run failed.
    /// </summary>
    public static async Task<(ChatCompletion? Completion, OpenAiErrorResponse? Error)> CollectAsync(
        this IAsyncEnumerable<ThreadEvent> events, ChatCompletionProjection projection, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        var calls = new SortedDictionary<int, (string Id, string Name, StringBuilder Arguments)>();
        ChatCompletionChunk? finish = null;
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            foreach (var item in projection.Apply(threadEvent))
            {
                if (item is ProjectedItem.Failure failure)
                {
                    return (null, failure.Value);
                }

                var chunk = ((ProjectedItem.Chunk)item).Value;
                if (chunk.Choices is not [var choice])
                {
                    continue;
                }

                text.Append(choice.Delta.Content);
                foreach (var call in choice.Delta.ToolCalls ?? [])
                {
                    if (call.Id is not null)
                    {
                        calls[call.Index] = (call.Id, call.Function.Name ?? string.Empty, new StringBuilder());
                    }

                    if (calls.TryGetValue(call.Index, out var known))
                    {
                        known.Arguments.Append(call.Function.Arguments);
                    }
                }

                if (choice.FinishReason is not null)
                {
                    finish = chunk;
                }
            }

            if (threadEvent.IsTerminal)
            {
                break;
            }
        }

        if (finish is null)
        {
            throw new InvalidOperationException("The run's events ended before the run did.");
        }

        var toolCalls = calls.Values
            .Select(c => new CompletionToolCall { Id = c.Id, Function = new CompletionFunction(c.Name, c.Arguments.ToString()) })
            .ToList();
        var completion = new ChatCompletion
        {
            Id = finish.Id,
            Created = finish.Created,
            Model = finish.Model,
            SystemFingerprint = finish.SystemFingerprint,
            Choices =
            [
                new CompletionChoice
                {
                    Index = 0,
                    Message = new CompletionMessage
                    {
                        Content = text.Length == 0 && toolCalls.Count > 0 ? null : text.ToString(),
                        ToolCalls = toolCalls.Count > 0 ? toolCalls : null,
                    },
                    FinishReason = finish.Choices[0].FinishReason!,
                },
            ],
            Usage = finish.Usage ?? new Usage(0, 0, 0),
            ThreadId = finish.ThreadId,
        };
        return (completion, null);
    }
}
