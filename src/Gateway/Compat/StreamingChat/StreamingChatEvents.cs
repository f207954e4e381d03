using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>
/// Projects a run's native events onto seed 003's <c>event_type</c> events. Text deltas become <c>chat_chunk</c>s; a
/// tool call is announced (<c>tool_call_start</c>, with its arguments) when the model has finished asking for it, that
/// is just before it runs, and ends with <c>tool_call_complete</c> or <c>tool_call_error</c>; the run ends with
/// <c>chat_complete</c> or <c>error</c>. Native events with no counterpart (agent status, argument deltas) are skipped.
/// </summary>
public static class StreamingChatEvents
{
    /// <summary>The projection of one run's events, ending with <c>chat_complete</c> or <c>error</c>.</summary>
    public static async IAsyncEnumerable<ChatStreamEvent> ProjectAsync(
        this IAsyncEnumerable<ThreadEvent> events, string agent, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        string? threadId = null;
        string? runId = null;
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool moved;
            var broken = false;
            try
            {
                moved = await enumerator.MoveNextAsync();
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                moved = false;
                broken = true;
            }

            if (broken)
            {
                // The stream itself broke (not the run): the client still gets the dialect's error as the last event.
                yield return Failure(agent, threadId, runId, RunErrorCodes.Internal, "The event stream of the run broke; the run may still be going on.");
                yield break;
            }

            if (!moved)
            {
                yield break;
            }

            var threadEvent = enumerator.Current;
            threadId = threadEvent.ThreadId;
            runId = threadEvent.RunId;
            foreach (var projected in Project(threadEvent, agent, text))
            {
                yield return projected;
                if (projected.IsTerminal)
                {
                    yield break;
                }
            }
        }
    }

    /// <summary>The SSE form: <c>id: sequence</c> and <c>data: {event JSON}</c> on one line; no event name, no <c>[DONE]</c>.</summary>
    public static async IAsyncEnumerable<SseItem<string>> ToSseItemsAsync(
        this IAsyncEnumerable<ChatStreamEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var chatEvent in events.WithCancellation(cancellationToken))
        {
            yield return ToSseItem(chatEvent);
        }
    }

    public static SseItem<string> ToSseItem(ChatStreamEvent chatEvent) =>
        new(JsonSerializer.Serialize(chatEvent, StreamingChatJson.Options))
        {
            EventId = chatEvent.Sequence > 0 ? chatEvent.Sequence.ToString(CultureInfo.InvariantCulture) : null,
        };

    /// <summary>An <c>error</c> event for a failure outside the run (the thread is busy, the stream broke).</summary>
    public static ChatStreamEvent Failure(string? agent, string? threadId, string? runId, string code, string message) => new()
    {
        EventType = ChatEventTypes.Error,
        Error = message,
        Message = message,
        Code = code,
        Agent = agent,
        ThreadId = threadId,
        RunId = runId,
        Timestamp = DateTimeOffset.UtcNow,
    };

    internal static IEnumerable<ChatStreamEvent> Project(ThreadEvent threadEvent, string agent, StringBuilder text)
    {
        ChatStreamEvent Event(string type) => new()
        {
            EventType = type,
            Agent = agent,
            ThreadId = threadEvent.ThreadId,
            RunId = threadEvent.RunId,
            Timestamp = threadEvent.CreatedAt,
            Sequence = threadEvent.Sequence,
        };

        switch (threadEvent)
        {
            case TextDelta delta:
                text.Append(delta.Text);
                yield return Event(ChatEventTypes.ChatChunk) with { Content = delta.Text };
                break;
            case MessageCompleted { Status: MessageStatuses.Completed } message:
                // The model has asked for these calls in full: they run next.
                foreach (var call in message.ToolCalls)
                {
                    yield return Event(ChatEventTypes.ToolCallStart) with
                    {
                        ToolCall = new ChatToolCall(call.Id, call.Name, ChatToolCall.ParseArguments(call.Arguments), null, null, null, "start"),
                    };
                }

                break;
            case ToolCallCompleted done:
                yield return Event(ChatEventTypes.ToolCallComplete) with
                {
                    ToolCall = new ChatToolCall(done.CallId, done.Name, ChatToolCall.ParseArguments(done.Arguments), done.Result, null, done.DurationMs, "complete"),
                };
                break;
            case ToolCallFailed failed:
                yield return Event(ChatEventTypes.ToolCallError) with
                {
                    ToolCall = new ChatToolCall(failed.CallId, failed.Name, ChatToolCall.ParseArguments(failed.Arguments), null, failed.Error, failed.DurationMs, "error"),
                };
                break;
            case RunCompleted completed:
                yield return Event(ChatEventTypes.ChatComplete) with
                {
                    FinalResponse = text.ToString(),
                    Usage = ChatUsage.From(completed.Usage),
                    StopReason = completed.StopReason,
                };
                break;
            case RunFailed failed:
                yield return Event(ChatEventTypes.Error) with
                {
                    Error = failed.Error.Message,
                    Message = failed.Error.Message,
                    Code = failed.Error.Code,
                    Usage = ChatUsage.From(failed.Usage),
                };
                break;
            case RunCancelled cancelled:
                var reason = $"The run was cancelled{(cancelled.Reason is null ? "" : $": {cancelled.Reason}")}.";
                yield return Event(ChatEventTypes.Error) with
                {
                    Error = reason,
                    Message = reason,
                    Code = "cancelled",
                    Usage = ChatUsage.From(cancelled.Usage),
                };
                break;
        }
    }
}
