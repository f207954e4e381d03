using System.Text.Json;

namespace Conversations.Tests.Compat.Axmp;

/// <summary>One event as a client of the seed reads it: the <c>event:</c> name and the parsed <c>data:</c> JSON.</summary>
public sealed record WireEvent(string? Event, JsonElement Data)
{
    public string Type => Data.GetProperty("type").GetString()!;

    public int Index => Data.GetProperty("index").GetInt32();
}

/// <summary>Reads an SSE body the way the seed's client examples do: split on '\n', take <c>event:</c> and <c>data:</c> lines.</summary>
public static class AnthropicWire
{
    public static async Task<List<WireEvent>> ReadAllAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        // The response ends when the run does, so the whole body is the run's stream.
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var events = new List<WireEvent>();
        string? eventName = null;
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                eventName = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var json = JsonDocument.Parse(line["data: ".Length..]);
                events.Add(new WireEvent(eventName, json.RootElement.Clone()));
            }
            else if (line.Length == 0)
            {
                eventName = null;
            }
        }

        return events;
    }

    /// <summary>The concatenated text of every <c>text_delta</c>.</summary>
    public static string Text(this IEnumerable<WireEvent> events) => string.Concat(events
        .Where(e => e.Type == "content_block_delta" && e.Data.GetProperty("delta").GetProperty("type").GetString() == "text_delta")
        .Select(e => e.Data.GetProperty("delta").GetProperty("text").GetString()));
}
