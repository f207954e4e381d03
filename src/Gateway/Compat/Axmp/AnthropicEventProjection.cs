using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.Axmp;

/// <summary>
/// Projects one run's thread events onto Anthropic's Messages stream: the run is one assistant message
/// (<c>message_start</c> … <c>message_delta</c>, <c>message_stop</c>) whose content blocks are, in order, every
/// model turn's text (a <c>text</c> block of <c>text_delta</c>s), every tool call (a <c>tool_use</c> block of
/// <c>input_json_delta</c>s) and every tool result (a <c>tool_result</c> block, whole in its start event, as
/// Anthropic sends server-tool results). A failed or cancelled run ends with an <c>error</c> event.
/// </summary>
/// <remarks>
/// Anthropic never interleaves blocks: one is open at a time. A model may stream several tool calls interleaved, so
/// only the first call of a turn streams live; the arguments of the others are held and sent, each call a block of its
/// own, when the turn ends. Stateful: one instance per response.
/// </remarks>
internal sealed class AnthropicEventProjection(string threadId)
{
    private readonly List<PendingToolCall> _pendingToolCalls = [];
    private int _nextIndex;
    private (int Index, string MessageId)? _textBlock;
    private (int Index, string CallId)? _toolBlock;

    /// <summary>The SSE items of a run's events, ending after its terminal event.</summary>
    public static async IAsyncEnumerable<SseItem<string>> ProjectAsync(
        string threadId, IAsyncEnumerable<ThreadEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var projection = new AnthropicEventProjection(threadId);
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            foreach (var item in projection.Project(threadEvent))
            {
                yield return item;
            }

            if (threadEvent.IsTerminal)
            {
                yield break;
            }
        }
    }

    /// <summary>The SSE items one thread event becomes (none for events this format has no place for).</summary>
    public IEnumerable<SseItem<string>> Project(ThreadEvent threadEvent)
    {
        switch (threadEvent)
        {
            case RunStarted started:
                yield return Item(new MessageStartEvent(new StartedMessage(started.RunId, started.Model, threadId)));
                break;
            case TextDelta delta:
                if (_textBlock?.MessageId != delta.MessageId)
                {
                    foreach (var item in CloseBlocks())
                    {
                        yield return item;
                    }

                    _textBlock = (_nextIndex, delta.MessageId);
                    yield return Item(new ContentBlockStartEvent(_nextIndex++, new TextBlock("")));
                }

                yield return Item(new ContentBlockDeltaEvent(_textBlock.Value.Index, new TextDeltaBody(delta.Text)));
                break;
            case ToolCallStarted call:
                if (CloseText() is { } textStop)
                {
                    yield return textStop;
                }

                if (_toolBlock is null && _pendingToolCalls.Count == 0)
                {
                    _toolBlock = (_nextIndex, call.CallId);
                    yield return Item(new ContentBlockStartEvent(_nextIndex++, new ToolUseBlock(call.CallId, call.Name)));
                }
                else
                {
                    _pendingToolCalls.Add(new PendingToolCall(call.CallId, call.Name));
                }

                break;
            case ToolCallArgumentsDelta arguments:
                if (_toolBlock?.CallId == arguments.CallId)
                {
                    yield return Item(new ContentBlockDeltaEvent(_toolBlock.Value.Index, new InputJsonDelta(arguments.Delta)));
                }
                else
                {
                    _pendingToolCalls.Find(p => p.CallId == arguments.CallId)?.Arguments.Append(arguments.Delta);
                }

                break;
            case MessageCompleted:
                foreach (var item in CloseBlocks())
                {
                    yield return item;
                }

                break;
            case ToolCallCompleted completed:
                foreach (var item in ToolResult(completed.CallId, completed.Result, isError: false))
                {
                    yield return item;
                }

                break;
            case ToolCallFailed failed:
                foreach (var item in ToolResult(failed.CallId, failed.Error, isError: true))
                {
                    yield return item;
                }

                break;
            case RunCompleted completed:
                foreach (var item in CloseBlocks())
                {
                    yield return item;
                }

                yield return Item(new MessageDeltaEvent(
                    new MessageDeltaBody(StopReason(completed.StopReason)),
                    new DeltaUsage(completed.Usage?.PromptTokens ?? 0, completed.Usage?.CompletionTokens ?? 0)));
                yield return Item(new MessageStopEvent(new StoppedMessage(threadId)));
                break;
            case RunFailed failed:
                yield return Error(failed.Error.Message);
                break;
            case RunCancelled cancelled:
                yield return Error($"The run was cancelled{(cancelled.Reason is { } reason ? $": {reason}" : "")}.");
                break;
        }
    }

    /// <summary>Anthropic's stop reasons for ours; <c>max_depth</c> stops while the model still asks for tools.</summary>
    internal static string StopReason(string stopReason) => stopReason switch
    {
        "length" => "max_tokens",
        "max_depth" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    private IEnumerable<SseItem<string>> ToolResult(string callId, string content, bool isError)
    {
        foreach (var item in CloseBlocks())
        {
            yield return item;
        }

        var index = _nextIndex++;
        yield return Item(new ContentBlockStartEvent(index, new ToolResultBlock(callId, content, isError)));
        yield return Item(new ContentBlockStopEvent(index));
    }

    private SseItem<string>? CloseText()
    {
        if (_textBlock is not { } text)
        {
            return null;
        }

        _textBlock = null;
        return Item(new ContentBlockStopEvent(text.Index));
    }

    private IEnumerable<SseItem<string>> CloseBlocks()
    {
        if (CloseText() is { } textStop)
        {
            yield return textStop;
        }

        if (_toolBlock is { } live)
        {
            _toolBlock = null;
            yield return Item(new ContentBlockStopEvent(live.Index));
        }

        // Calls held back while another streamed: each its own block now, whole.
        foreach (var pending in _pendingToolCalls)
        {
            var index = _nextIndex++;
            yield return Item(new ContentBlockStartEvent(index, new ToolUseBlock(pending.CallId, pending.Name)));
            if (pending.Arguments.Length > 0)
            {
                yield return Item(new ContentBlockDeltaEvent(index, new InputJsonDelta(pending.Arguments.ToString())));
            }

            yield return Item(new ContentBlockStopEvent(index));
        }

        _pendingToolCalls.Clear();
    }

    private static SseItem<string> Error(string message) =>
        new(JsonSerializer.Serialize(new AnthropicErrorBody(new AnthropicError("api_error", message)), AxmpJson.Options), "error");

    private static SseItem<string> Item<T>(T payload)
        where T : AnthropicEvent =>
        new(JsonSerializer.Serialize(payload, AxmpJson.Options), payload.Type);

    private sealed record PendingToolCall(string CallId, string Name)
    {
        public StringBuilder Arguments { get; } = new();
    }

    private abstract record AnthropicEvent([property: JsonPropertyOrder(-1)] string Type);

    private sealed record MessageStartEvent(StartedMessage Message) : AnthropicEvent("message_start");

    /// <summary>Anthropic's message object; <c>id</c> is the run's id, <c>thread_id</c> is the seed's addition.</summary>
    private sealed record StartedMessage(string Id, string Model, string ThreadId)
    {
        public string Type => "message";
        public string Role => MessageRoles.Assistant;
        public IReadOnlyList<object> Content => [];
        public string? StopReason => null;
        public string? StopSequence => null;
        public DeltaUsage Usage => new(0, 0);
    }

    private sealed record ContentBlockStartEvent(int Index, object ContentBlock) : AnthropicEvent("content_block_start");

    private sealed record ContentBlockDeltaEvent(int Index, object Delta) : AnthropicEvent("content_block_delta");

    private sealed record ContentBlockStopEvent(int Index) : AnthropicEvent("content_block_stop");

    private sealed record MessageDeltaEvent(MessageDeltaBody Delta, DeltaUsage Usage) : AnthropicEvent("message_delta");

    private sealed record MessageStopEvent(StoppedMessage Message) : AnthropicEvent("message_stop");

    /// <summary>The seed's library names the thread in <c>message_stop</c> too; Anthropic clients ignore the extra field.</summary>
    private sealed record StoppedMessage(string ThreadId)
    {
        public string Type => "message";
        public string Role => MessageRoles.Assistant;
    }

    private sealed record MessageDeltaBody(string StopReason)
    {
        public string? StopSequence => null;
    }

    private sealed record DeltaUsage(int InputTokens, int OutputTokens);

    private sealed record TextBlock(string Text)
    {
        [JsonPropertyOrder(-1)]
        public string Type => "text";
    }

    private sealed record ToolUseBlock(string Id, string Name)
    {
        [JsonPropertyOrder(-1)]
        public string Type => "tool_use";
        public IReadOnlyDictionary<string, object> Input => new Dictionary<string, object>();
    }

    private sealed record ToolResultBlock(string ToolUseId, string Content, bool IsError)
    {
        [JsonPropertyOrder(-1)]
        public string Type => "tool_result";
    }

    private sealed record TextDeltaBody(string Text)
    {
        [JsonPropertyOrder(-1)]
        public string Type => "text_delta";
    }

    private sealed record InputJsonDelta(string PartialJson)
    {
        [JsonPropertyOrder(-1)]
        public string Type => "input_json_delta";
    }
}
