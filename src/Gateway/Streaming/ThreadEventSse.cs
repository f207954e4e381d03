using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Serialization;

namespace Conversations.Gateway.Streaming;

/// <summary>The native SSE form of thread events: <c>id: sequence</c>, <c>event: type</c>, <c>data: camelCase JSON</c>.</summary>
public static class ThreadEventSse
{
    public static SseItem<string> ToSseItem(ThreadEvent threadEvent) =>
        new(JsonSerializer.Serialize(threadEvent, ContractJson.Options), threadEvent.Type)
        {
            EventId = threadEvent.Sequence.ToString(CultureInfo.InvariantCulture),
        };

    /// <summary>The events of one run, ending with its terminal event.</summary>
    public static async IAsyncEnumerable<ThreadEvent> UntilRunEndsAsync(
        this IAsyncEnumerable<ThreadEvent> events, string runId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            if (threadEvent.RunId != runId)
            {
                continue;
            }

            yield return threadEvent;
            if (threadEvent.IsTerminal)
            {
                yield break;
            }
        }
    }

    public static async IAsyncEnumerable<SseItem<string>> ToSseItemsAsync(
        this IAsyncEnumerable<ThreadEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            yield return ToSseItem(threadEvent);
        }
    }
}
