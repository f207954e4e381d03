using System.Text.Json;

namespace Conversations.Tests.Compat.OpenAi;

/// <summary>
/// Reads an OpenAI-style SSE body the way the seeds' JavaScript clients do: split the raw body on '\n', keep the
/// lines that start with <c>data: </c>, stop at <c>[DONE]</c>, JSON-parse the rest.
/// </summary>
public static class ChunkWire
{
    /// <summary>The <c>data:</c> payloads in order, <c>[DONE]</c> included when it came.</summary>
    public static async Task<List<string>> ReadDataLinesAsync(this HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var data = new List<string>();
        foreach (var line in body.Split('\n'))
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }

            var payload = line[6..];
            data.Add(payload);
            if (payload == "[DONE]")
            {
                break;
            }
        }

        return data;
    }

    /// <summary>The JSON chunks (everything but <c>[DONE]</c>).</summary>
    public static List<JsonElement> Chunks(this IEnumerable<string> data) =>
        [.. data.Where(d => d != "[DONE]").Select(d => JsonDocument.Parse(d).RootElement.Clone())];

    public static JsonElement Choice(this JsonElement chunk) => chunk.GetProperty("choices")[0];

    public static JsonElement Delta(this JsonElement chunk) => chunk.Choice().GetProperty("delta");

    public static bool HasChoice(this JsonElement chunk) => chunk.TryGetProperty("choices", out var c) && c.GetArrayLength() > 0;

    public static string? Str(this JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>Concatenated <c>delta.content</c> of every chunk.</summary>
    public static string Text(this IEnumerable<JsonElement> chunks) =>
        string.Concat(chunks.Where(c => c.HasChoice()).Select(c => c.Delta().Str("content")));

    /// <summary>Every <c>delta.tool_calls[]</c> item, in order.</summary>
    public static List<JsonElement> ToolCallDeltas(this IEnumerable<JsonElement> chunks) =>
        [.. chunks.Where(c => c.HasChoice() && c.Delta().TryGetProperty("tool_calls", out _)).SelectMany(c => c.Delta().GetProperty("tool_calls").EnumerateArray())];

    public static async Task<HttpResponseMessage> PostJsonAsync(
        this HttpClient client, string path, object body, IDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.Add(name, value);
        }

        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }
}
