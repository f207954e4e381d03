using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Hostile;

/// <summary>
/// A property of every wire format: whatever text the model streams — line breaks of every kind, things that look
/// like SSE fields (<c>data:</c>, <c>event:</c>, <c>id:</c>, <c>[DONE]</c>), control characters, separators, quotes,
/// markup, astral characters — each format's stream parses as well-formed SSE and its deltas concatenate to exactly
/// the text, which is also exactly the stored message (less any NUL character, which is dropped before it is told or
/// stored: PostgreSQL text cannot hold one). Random cases from fixed seeds, so a failure reproduces.
/// </summary>
public sealed class FramingPropertyTests
{
    private const int Cases = 12;

    private static readonly string[] Pieces =
    [
        "a", "word", " ", "  ", "\n", "\r", "\r\n", "\n\n", "\r\n\r\n", "data: ", "data:{\"x\":1}", "event: run.completed",
        "id: 999", "retry: 1", ": comment", "[DONE]", "\t", "\u0000", "\u0001", "\u001b[31m", "\u007f", "\u0085", "\u2028",
        "\u2029", "\"", "\\", "\\n", "'", "</script>", "<b>", "&amp;", "😀", "👩‍💻", "ß", "日本", "\uFEFF", "\u200B", "{", "}",
    ];

    private static readonly string[] Formats = ["native", "openai", "anthropic", "langbase", "completion", "chat"];

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Random_model_text_never_breaks_the_framing_of_any_format_and_each_tells_it_exactly()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        for (var seed = 1; seed <= Cases; seed++)
        {
            var random = new Random(seed);
            var deltas = Enumerable.Range(0, random.Next(1, 12)).Select(_ => RandomText(random)).Where(d => d.Length > 0).DefaultIfEmpty("x").ToArray();
            // NUL characters are dropped from the model's text (no PostgreSQL text can hold one); everything else is told as sent.
            var expected = string.Concat(deltas).Replace("\0", "", StringComparison.Ordinal);
            model.Enqueue(ScriptedResponse.Text(deltas));
            var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

            // The sender's own stream (native, POST), then every format's replay of the same run.
            using var send = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = RandomText(random).Replace("\0", "", StringComparison.Ordinal) + "?", stream = true }, Guard);
            var sent = await ReadAllAsync(send);
            var runId = JsonDocument.Parse(sent[0].Data).RootElement.GetProperty("runId").GetString()!;
            Assert.True(Text("native", sent) == expected, $"seed {seed}: the sender's stream told {Show(Text("native", sent))}, not {Show(expected)}");

            foreach (var format in Formats)
            {
                using var watch = await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{runId}/events?format={format}", cancellationToken: Guard);
                var items = await ReadAllAsync(watch);
                var told = Text(format, items);
                Assert.True(told == expected, $"seed {seed}, format {format}: told {Show(told)}, not {Show(expected)}");
            }

            var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
            Assert.Equal("run.completed", sent[^1].EventType);
            Assert.Equal(expected, messages[messages.GetArrayLength() - 1].GetProperty("content").GetString());
        }
    }

    private static string RandomText(Random random)
    {
        var text = new StringBuilder();
        for (var i = random.Next(0, 6); i > 0; i--)
        {
            text.Append(Pieces[random.Next(Pieces.Length)]);
        }

        return text.ToString();
    }

    /// <summary>The text a format's stream tells, each item parsed as that format's JSON (a parse failure fails the test).</summary>
    private static string Text(string format, List<SseItem<string>> items) => string.Concat(items.Select(item =>
    {
        if (item.Data == "[DONE]")
        {
            return "";
        }

        var data = JsonDocument.Parse(item.Data).RootElement;
        return format switch
        {
            "native" => item.EventType == "text.delta" ? data.GetProperty("text").GetString()! : "",
            "openai" or "langbase" => data.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
                    ? content.GetString()! : "",
            "anthropic" => item.EventType == "content_block_delta" && data.GetProperty("delta").TryGetProperty("text", out var text) ? text.GetString()! : "",
            "completion" => data.TryGetProperty("done", out var done) && !done.GetBoolean() ? data.GetProperty("content").GetString() ?? "" : "",
            "chat" => data.GetProperty("event_type").GetString() == "chat_chunk" ? data.GetProperty("content").GetString()! : "",
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }));

    private static string Show(string text) => JsonSerializer.Serialize(text);

    private static Task<List<SseItem<string>>> ReadAllAsync(HttpResponseMessage response) => response.ReadAllItemsAsync(Guard);
}
