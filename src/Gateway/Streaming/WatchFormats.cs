using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Conversations.Gateway.Compat.Axmp;
using Conversations.Gateway.Compat.Completion;
using Conversations.Gateway.Compat.OpenAi;
using Conversations.Gateway.Compat.StreamingChat;
using Conversations.Grains.Abstractions.Events;

namespace Conversations.Gateway.Streaming;

/// <summary>
/// A thread's (or one run's) stream watched in any wire format (<c>?format=</c>): each run's events go through the
/// projection its dialect's own endpoint uses, so an OpenAI-SDK client, a seed-003 page and a native client watch one
/// run together. Every projected item of an event carries that event's sequence as its last SSE <c>id</c>, so the
/// resume rules are the native ones: <c>Last-Event-ID</c> resumes after that event in any format.
/// </summary>
public static class WatchFormats
{
    public const string QueryName = "format";
    public const string Native = "native";
    public const string OpenAi = "openai";
    public const string Anthropic = "anthropic";
    public const string Langbase = "langbase";
    public const string Completion = "completion";
    public const string Chat = "chat";

    /// <summary>Every format, in the order the documentation lists them.</summary>
    public static IReadOnlyList<string> All { get; } = [Native, OpenAi, Anthropic, Langbase, Completion, Chat];

    public static bool IsKnown(string? format) => format is null || All.Contains(format, StringComparer.Ordinal);

    /// <summary>The SSE items of <paramref name="events"/> in <paramref name="format"/> (anything but native).</summary>
    public static async IAsyncEnumerable<SseItem<string>> ProjectAsync(
        string format, string threadId, IAsyncEnumerable<ThreadEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var runs = new Dictionary<string, Func<ThreadEvent, IEnumerable<SseItem<string>>>>(StringComparer.Ordinal);
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            if (!runs.TryGetValue(threadEvent.RunId, out var project))
            {
                project = Create(format, threadId, threadEvent);
                runs[threadEvent.RunId] = project;
            }

            var items = project(threadEvent).ToList();
            var id = threadEvent.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
            for (var i = 0; i < items.Count; i++)
            {
                // The event's sequence on its last item: a client cut off within an event's items gets them again.
                yield return i == items.Count - 1 ? new SseItem<string>(items[i].Data, items[i].EventType) { EventId = id } : items[i];
            }

            if (threadEvent.IsTerminal)
            {
                runs.Remove(threadEvent.RunId);
            }
        }
    }

    /// <summary>The projection of one run, created at the first of its events the watcher sees.</summary>
    private static Func<ThreadEvent, IEnumerable<SseItem<string>>> Create(string format, string threadId, ThreadEvent first)
    {
        var started = first as RunStarted;
        switch (format)
        {
            case OpenAi or Langbase:
                var chunks = new ChatCompletionProjection(new ChunkStreamSettings
                {
                    CompletionId = ChatCompletionProjection.CompletionIdFor(first.RunId),
                    Created = first.CreatedAt.ToUnixTimeSeconds(),
                    Model = started?.Model ?? "unknown",
                    ThreadId = format == OpenAi ? threadId : null,
                    RoleChunk = format == OpenAi,
                });
                return e => OpenAiItems(chunks, e);
            case Anthropic:
                var anthropic = new AnthropicEventProjection(threadId);
                return anthropic.Project;
            case Completion:
                var completion = new CompletionRun(threadId, new CompletionRequest(null, started?.Model, started?.Agent, true, null, null, null, threadId, null, null));
                return e => completion.Observe(e) is { } chunk ? [new SseItem<string>(JsonSerializer.Serialize(chunk, CompletionJson.Options))] : [];
            case Chat:
                var text = new StringBuilder();
                var agent = started?.Agent ?? "";
                return e => StreamingChatEvents.Project(e, agent, text).Select(StreamingChatEvents.ToSseItem);
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, $"format must be one of {string.Join(", ", All)}.");
        }
    }

    private static IEnumerable<SseItem<string>> OpenAiItems(ChatCompletionProjection projection, ThreadEvent threadEvent)
    {
        foreach (var item in projection.Apply(threadEvent))
        {
            yield return item switch
            {
                ProjectedItem.Chunk chunk => new SseItem<string>(JsonSerializer.Serialize(chunk.Value, OpenAiJson.Options)),
                ProjectedItem.Failure failure => new SseItem<string>(JsonSerializer.Serialize(failure.Value, OpenAiJson.Options)),
                _ => throw new InvalidOperationException($"Unknown projected item {item.GetType().Name}."),
            };
        }

        if (threadEvent.IsTerminal)
        {
            // Each run is one completion: its chunks end with [DONE], as OpenAI's streams do.
            yield return new SseItem<string>("[DONE]");
        }
    }
}
