using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Conversations.Bench.Client;

/// <summary>The ways the bench reads a model's tokens: straight from the fake, through the naive proxy, or through the
/// server under test by its native API or its OpenAI dialect.</summary>
public enum StreamPath
{
    Direct,
    NaiveProxy,
    Native,
    OpenAi,
}

/// <summary>What one SSE item meant: a piece of text, the end of the run, or something else (status events, …).</summary>
public enum DeltaKind
{
    Other,
    Text,
    End,
    Failed,
}

/// <summary>One SSE item as the bench saw it, with the monotonic time it was parsed.</summary>
public readonly record struct Delta(DeltaKind Kind, string? Text, long ReceivedAt);

/// <summary>Starting streams on each path and reading their deltas, parsed as little as possible (one JSON property).</summary>
public sealed class StreamClient(HttpClient http)
{
    public HttpClient Http => http;

    /// <summary>Creates a thread on the server under test; answers its id.</summary>
    public async Task<string> CreateThreadAsync(Uri gateway, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsJsonAsync(new Uri(gateway, "threads"), new { }, cancellationToken);
        response.EnsureSuccessStatusCode();
        using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
        return body.RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>Sends the prompt on <paramref name="path"/> and answers once the response headers arrived.</summary>
    public async Task<HttpResponseMessage> StartAsync(StreamPath path, Uri baseUrl, string prompt, string? threadId, CancellationToken cancellationToken)
    {
        var (url, body) = path switch
        {
            StreamPath.Direct => (new Uri(baseUrl, "v1/chat/completions"), (object)new
            {
                model = "fake-model",
                stream = true,
                messages = new[] { new { role = "user", content = prompt } },
            }),
            StreamPath.NaiveProxy => (new Uri(baseUrl, "completion"), new { message = prompt, stream = true }),
            StreamPath.Native => (new Uri(baseUrl, $"threads/{threadId}/messages"), new { content = prompt, stream = true }),
            StreamPath.OpenAi => (new Uri(baseUrl, "v1/chat/completions"), new
            {
                model = "fake-model",
                stream = true,
                messages = new[] { new { role = "user", content = prompt } },
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(path)),
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body) };
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            response.Dispose();
            throw new HttpRequestException($"{path} {url} answered {(int)response.StatusCode}: {text}");
        }

        return response;
    }

    /// <summary>Opens <c>GET /threads/{id}/events</c> (from the thread's next event on) and answers once the headers arrived.</summary>
    public async Task<HttpResponseMessage> WatchAsync(Uri gateway, string threadId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway, $"threads/{threadId}/events"));
        request.Headers.Accept.ParseAdd("text/event-stream");
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        return response;
    }

    /// <summary>The deltas of a stream until it ends (native: until a run ends, as a watch stream goes on across runs).</summary>
    public static async IAsyncEnumerable<Delta> ReadAsync(
        HttpResponseMessage response, StreamPath path, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        SseItemParser<(DeltaKind, string?)> parser = path switch
        {
            StreamPath.Native => ParseNative,
            StreamPath.NaiveProxy => ParseProxy,
            _ => ParseChunk,
        };
        await foreach (var item in SseParser.Create(body, parser).EnumerateAsync(cancellationToken))
        {
            var (kind, text) = item.Data;
            yield return new Delta(kind, text, Stopwatch.GetTimestamp());
            if (kind is DeltaKind.End or DeltaKind.Failed)
            {
                yield break;
            }
        }
    }

    private static (DeltaKind, string?) ParseNative(string eventType, ReadOnlySpan<byte> data) => eventType switch
    {
        "text.delta" => (DeltaKind.Text, StringProperty(data, "text"u8)),
        "run.completed" => (DeltaKind.End, null),
        "run.failed" or "run.cancelled" => (DeltaKind.Failed, System.Text.Encoding.UTF8.GetString(data)),
        _ => (DeltaKind.Other, null),
    };

    private static (DeltaKind, string?) ParseChunk(string eventType, ReadOnlySpan<byte> data)
    {
        if (data.SequenceEqual("[DONE]"u8))
        {
            return (DeltaKind.End, null);
        }

        return StringProperty(data, "content"u8) is { Length: > 0 } text ? (DeltaKind.Text, (string?)text) : (DeltaKind.Other, null);
    }

    private static (DeltaKind, string?) ParseProxy(string eventType, ReadOnlySpan<byte> data) =>
        StringProperty(data, "content"u8) is { Length: > 0 } text ? (DeltaKind.Text, (string?)text)
        : data.IndexOf("\"done\":true"u8) >= 0 ? (DeltaKind.End, null)
        : (DeltaKind.Other, null);

    /// <summary>The first string property of that name, at any depth.</summary>
    private static string? StringProperty(ReadOnlySpan<byte> json, ReadOnlySpan<byte> name)
    {
        var reader = new Utf8JsonReader(json);
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(name) && reader.Read()
                    && reader.TokenType == JsonTokenType.String)
                {
                    return reader.GetString();
                }
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }
}
