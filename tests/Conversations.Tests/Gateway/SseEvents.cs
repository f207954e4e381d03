using System.Net;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Conversations.Tests.Gateway;

/// <summary>One native SSE event as a client parses it.</summary>
public sealed record SseEvent(string Id, string Type, JsonElement Data)
{
    public long Sequence => long.Parse(Id, System.Globalization.CultureInfo.InvariantCulture);

    public string? Str(string property) => Data.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}

public static class SseEvents
{
    /// <summary>Parses an SSE response with <see cref="SseParser"/>, as a .NET client would.</summary>
    public static async IAsyncEnumerable<SseEvent> ReadEventsAsync(this HttpResponseMessage response, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken))
        {
            using var document = JsonDocument.Parse(item.Data);
            yield return new SseEvent(item.EventId ?? string.Empty, item.EventType, document.RootElement.Clone());
        }
    }

    /// <summary>Reads events up to and including the first that matches <paramref name="last"/>.</summary>
    public static async Task<List<SseEvent>> ReadUntilAsync(this IAsyncEnumerable<SseEvent> events, Func<SseEvent, bool> last, CancellationToken cancellationToken = default)
    {
        var list = new List<SseEvent>();
        await foreach (var e in events.WithCancellation(cancellationToken))
        {
            list.Add(e);
            if (last(e))
            {
                return list;
            }
        }

        throw new InvalidOperationException($"The stream ended after {list.Count} events without the expected one: {string.Join(", ", list.Select(e => e.Type))}");
    }

    /// <summary>Every raw SSE item of a 200 response until it ends, as any dialect frames it.</summary>
    public static async Task<List<SseItem<string>>> ReadAllItemsAsync(this HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var items = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken))
        {
            items.Add(item);
        }

        return items;
    }

    public static bool IsRunEnd(SseEvent e) => e.Type is "run.completed" or "run.failed" or "run.cancelled";

    public static async Task<HttpResponseMessage> PostStreamAsync(this HttpClient client, string path, object body, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    public static async Task<HttpResponseMessage> OpenEventStreamAsync(this HttpClient client, string path, string? lastEventId = null, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>Creates a thread and returns its id.</summary>
    public static async Task<string> CreateThreadAsync(this HttpClient client, object? body = null, CancellationToken cancellationToken = default)
    {
        using var response = await client.PostAsJsonAsync("/threads", body ?? new { }, cancellationToken);
        response.EnsureSuccessStatusCode();
        var created = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        return created.GetProperty("id").GetString()!;
    }
}
