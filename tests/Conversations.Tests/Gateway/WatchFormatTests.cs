using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>One run watched in every wire format at once (<c>?format=</c>), each a projection of the same log.</summary>
public sealed class WatchFormatTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task One_run_is_watched_in_every_format_at_once_and_each_tells_the_same_answer_with_native_ids()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello", " from", " every", " dialect.").HoldAfter(2, release.Task));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var send = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "Hi", wait = false }, Guard);
        var runId = (await send.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
        await model.WaitForRequestAsync(1, Guard);

        string[] formats = ["native", "openai", "anthropic", "langbase", "completion", "chat"];
        var responses = new List<HttpResponseMessage>();
        foreach (var format in formats)
        {
            responses.Add(await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{runId}/events?format={format}", cancellationToken: Guard));
        }

        var reads = responses.Select(r => ReadAllAsync(r)).ToList();
        release.SetResult();
        var items = (await Task.WhenAll(reads)).Select((list, i) => (Format: formats[i], Items: list)).ToDictionary(x => x.Format, x => x.Items);
        foreach (var response in responses)
        {
            response.Dispose();
        }

        var native = items["native"];
        var sequences = native.Select(i => i.EventId).ToList();
        Assert.Equal("run.completed", native[^1].EventType);

        // OpenAI: chat.completion.chunk objects, the answer in the deltas, the run one completion ending with [DONE].
        var openai = items["openai"];
        Assert.Equal("[DONE]", openai[^1].Data);
        var chunks = openai.Where(i => i.Data != "[DONE]").Select(i => JsonDocument.Parse(i.Data).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("Hello from every dialect.", string.Concat(chunks.Select(DeltaContent)));
        Assert.Equal("stop", chunks.Select(c => c.GetProperty("choices")).Where(c => c.GetArrayLength() > 0)
            .Select(c => c[0].TryGetProperty("finish_reason", out var f) ? f.GetString() : null).Last(f => f is not null));
        Assert.Equal("Hello from every dialect.", string.Concat(items["langbase"].Where(i => i.Data != "[DONE]").Select(i => DeltaContent(JsonDocument.Parse(i.Data).RootElement))));

        // Anthropic: its event names, from message_start to message_stop, the text in content_block_delta.
        var anthropic = items["anthropic"];
        Assert.Equal("message_start", anthropic[0].EventType);
        Assert.Equal("message_stop", anthropic[^1].EventType);
        Assert.Equal("Hello from every dialect.", string.Concat(anthropic.Where(i => i.EventType == "content_block_delta")
            .Select(i => JsonDocument.Parse(i.Data).RootElement.GetProperty("delta").GetProperty("text").GetString())));

        // Seed 001 (completion): text chunks, the last done; seed 003 (chat): its event types, ending with chat_complete.
        var completion = items["completion"].Select(i => JsonDocument.Parse(i.Data).RootElement).ToList();
        Assert.True(completion[^1].GetProperty("done").GetBoolean());
        Assert.Equal("Hello from every dialect.", string.Concat(completion.Select(c => c.GetProperty("content").GetString())));
        var chat = items["chat"].Select(i => JsonDocument.Parse(i.Data).RootElement).ToList();
        Assert.Equal("chat_complete", chat[^1].GetProperty("event_type").GetString());

        // Every format's ids are native sequences, in order: Last-Event-ID resumes the same way in each.
        foreach (var format in formats)
        {
            var ids = items[format].Where(i => i.EventId is not null).Select(i => i.EventId!).ToList();
            Assert.NotEmpty(ids);
            Assert.All(ids, id => Assert.Contains(id, sequences));
            Assert.Equal(ids.Select(long.Parse).Order(), ids.Select(long.Parse));
        }

        // Resumed in OpenAI's format after an event: only what came after it.
        var resumeAfter = openai.First(i => i.EventId is not null && DeltaContent(JsonDocument.Parse(i.Data).RootElement) == "Hello").EventId!;
        using var resumed = await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{runId}/events?format=openai", resumeAfter, Guard);
        var rest = await ReadAllAsync(resumed);
        Assert.Equal(" from every dialect.", string.Concat(rest.Where(i => i.Data != "[DONE]").Select(i => DeltaContent(JsonDocument.Parse(i.Data).RootElement))));
    }

    [Fact]
    public async Task An_unknown_format_is_refused_naming_the_field()
    {
        await using var app = new GatewayApp();
        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);

        using var thread = await app.Client.GetAsync($"/threads/{threadId}/events?format=xml", Guard);
        var problem = await thread.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, thread.StatusCode);
        Assert.Contains("native, openai, anthropic, langbase, completion, chat", problem.GetProperty("errors").GetProperty("format")[0].GetString(), StringComparison.Ordinal);
    }

    private static string DeltaContent(JsonElement chunk) =>
        chunk.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
        && choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
            ? content.GetString()!
            : "";

    private static Task<List<SseItem<string>>> ReadAllAsync(HttpResponseMessage response) => response.ReadAllItemsAsync(Guard);
}
