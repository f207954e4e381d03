using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Limits;

/// <summary>An agent's <c>maxToolCalls</c>: a run whose model asks for more tool calls ends <c>failed</c> (<c>tool_call_limit</c>), and every subscriber is told.</summary>
public sealed class ToolCallLimitTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_model_that_loops_tool_calls_fails_the_run_with_tool_call_limit_for_every_subscriber()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        // The model would call tools forever: two calls a turn, far more turns than the limit allows.
        for (var turn = 0; turn < 10; turn++)
        {
            model.Enqueue(ScriptedResponse.ToolCalls(
                new ScriptedToolCall($"call_{turn}_a", "calculate", "{\"expression\":\"1+1\"}"),
                new ScriptedToolCall($"call_{turn}_b", "calculate", "{\"expression\":\"2+2\"}")));
        }

        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        using var created = await client.PostAsJsonAsync("/agents", new { name = "looper", maxToolCalls = 3, maxDepth = 50 }, Guard);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(3, (await created.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("maxToolCalls").GetInt32());
        var threadId = await client.CreateThreadAsync(new { agent = "looper" }, Guard);

        // A watcher of the thread, and the sender's own stream.
        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "loop", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        foreach (var stream in new[] { events, await watched })
        {
            var end = stream[^1];
            Assert.Equal("run.failed", end.Type);
            Assert.Equal("tool_call_limit", end.Data.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("maxToolCalls", end.Data.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
            // The first turn's two calls ran; the second turn's would have made four, so none of them did.
            Assert.Equal(2, stream.Count(e => e.Type == "tool_call.completed"));
        }

        Assert.Equal(2, model.Requests.Count);
        var runId = events[^1].Str("runId");
        var run = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{runId}", Guard);
        Assert.Equal("failed", run.GetProperty("status").GetString());
        Assert.Equal("tool_call_limit", run.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task MaxToolCalls_defaults_to_64_and_is_validated()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        var agent = await client.GetFromJsonAsync<JsonElement>("/agents/default", Guard);
        using var zero = await client.PostAsJsonAsync("/agents", new { name = "bad", maxToolCalls = 0 }, Guard);

        Assert.Equal(64, agent.GetProperty("maxToolCalls").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, zero.StatusCode);
        var problem = await zero.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.True(problem.GetProperty("errors").TryGetProperty("maxToolCalls", out _), problem.GetRawText());
    }
}
