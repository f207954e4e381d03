using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.Completion;

/// <summary>
/// Seed 001's view of one run: each thread event becomes zero or one <see cref="StreamChunk"/>, and the same fold
/// gives the non-streaming <see cref="CompletionResponse"/>. Stateful: one instance per request.
/// </summary>
/// <remarks>
/// Chunks, in order: <c>start</c> (on <c>run.started</c>, so <c>conversation_id</c> arrives first), <c>text</c> (one per
/// text delta, the only chunks with content), <c>tool_call</c> (status <c>started</c>, then <c>completed</c> or
/// <c>failed</c> with arguments and result), and the last one: <c>done: true</c> with usage, finish reason and every
/// tool call, or the seed's failure chunk <c>{"content":"","done":true,"error":…}</c>.
/// </remarks>
internal sealed class CompletionRun(string conversationId, CompletionRequest request)
{
    private readonly StringBuilder _content = new();
    private readonly List<CompletionToolCall> _toolCalls = [];
    private string _runId = "";
    private string _model = request.Model ?? "";
    private string _agent = request.Agent ?? "";

    /// <summary>The run ended with a failure or a cancel: the message, else null.</summary>
    public string? Error { get; private set; }

    /// <summary>How the run ended, once it has (null while it runs).</summary>
    public CompletionMetadata? Final { get; private set; }

    /// <summary>The SSE items of a run's events, ending after its terminal event.</summary>
    public async IAsyncEnumerable<SseItem<string>> ToSseItemsAsync(
        IAsyncEnumerable<ThreadEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            if (Observe(threadEvent) is { } chunk)
            {
                yield return new SseItem<string>(JsonSerializer.Serialize(chunk, CompletionJson.Options));
            }

            if (threadEvent.IsTerminal)
            {
                yield break;
            }
        }
    }

    /// <summary>Folds a run's events; the response, or null when the run failed (see <see cref="Error"/>).</summary>
    public async Task<CompletionResponse?> CollectAsync(IAsyncEnumerable<ThreadEvent> events, CancellationToken cancellationToken)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            Observe(threadEvent);
            if (threadEvent.IsTerminal)
            {
                break;
            }
        }

        return Error is null && Final is { } final
            ? new CompletionResponse(_content.ToString(), _model, _agent, conversationId, final with { Type = null })
            : null;
    }

    /// <summary>Takes in one event; the chunk it becomes, if any.</summary>
    public StreamChunk? Observe(ThreadEvent threadEvent)
    {
        switch (threadEvent)
        {
            case RunStarted started:
                _runId = started.RunId;
                _model = started.Model;
                _agent = started.Agent;
                return Chunk(new CompletionMetadata { Type = "start", RunId = _runId, Model = _model, Agent = _agent });
            case TextDelta delta:
                _content.Append(delta.Text);
                return Chunk(new CompletionMetadata { Type = "text", MessageId = delta.MessageId }, delta.Text);
            case ToolCallStarted call:
                return Chunk(new CompletionMetadata { Type = "tool_call", ToolCall = new CompletionToolCall(call.CallId, call.Name, "started") });
            case ToolCallCompleted done:
                return ToolCallEnded(new CompletionToolCall(done.CallId, done.Name, "completed", done.Arguments, done.Result, DurationMs: done.DurationMs));
            case ToolCallFailed failed:
                return ToolCallEnded(new CompletionToolCall(failed.CallId, failed.Name, "failed", failed.Arguments, Error: failed.Error, DurationMs: failed.DurationMs));
            case RunCompleted completed:
                Final = Summary(completed.StopReason, completed.Usage, "done");
                return new StreamChunk("", true, Final, conversationId);
            case RunFailed failed:
                return Failed(failed.Error.Message, failed.Error.Code, failed.Usage);
            case RunCancelled cancelled:
                return Failed($"The run was cancelled{(cancelled.Reason is { } reason ? $": {reason}" : "")}.", "cancelled", cancelled.Usage);
            default:
                return null;
        }
    }

    private StreamChunk ToolCallEnded(CompletionToolCall call)
    {
        _toolCalls.Add(call);
        return Chunk(new CompletionMetadata { Type = "tool_call", ToolCall = call });
    }

    private StreamChunk Failed(string message, string code, Usage? usage)
    {
        Error = message;
        Final = Summary(null, usage, "error") with { Code = code };
        return new StreamChunk("", true, Final, conversationId, message);
    }

    private CompletionMetadata Summary(string? finishReason, Usage? usage, string type) => new()
    {
        Type = type,
        RunId = _runId,
        Model = _model,
        Agent = _agent,
        FinishReason = finishReason,
        Usage = usage is null ? null : new CompletionUsage(usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens),
        ToolCalls = [.. _toolCalls],
        ProjectId = request.ProjectId,
        Sources = request.Sources,
    };

    private StreamChunk Chunk(CompletionMetadata metadata, string content = "") => new(content, false, metadata, conversationId);
}
