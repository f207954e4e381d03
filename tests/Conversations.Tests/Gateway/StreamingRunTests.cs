using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>Runs streamed over the native API, with the fake model server scripting the model.</summary>
public sealed class StreamingRunTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Demo_model_streams_a_calculate_call_and_its_result_live()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "what is 17 * 23?", stream = true }, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal("run.started", events[0].Type);
        Assert.Equal("run.completed", events[^1].Type);
        var completed = Assert.Single(events, e => e.Type == "tool_call.completed");
        Assert.Equal("calculate", completed.Str("name"));
        Assert.Equal("391", completed.Str("result"));
        Assert.Contains(events, e => e.Type == "tool_call.started" && e.Str("name") == "calculate");
        var answer = string.Concat(events.Where(e => e.Type == "text.delta" && events.IndexOf(e) > events.IndexOf(completed)).Select(e => e.Str("text")));
        Assert.Contains("391", answer);
        // Sequence numbers are the SSE ids: consecutive, and every event names its thread and run.
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));
        Assert.All(events, e => Assert.Equal(threadId, e.Str("threadId")));
        Assert.All(events, e => Assert.Equal(events[0].Str("runId"), e.Str("runId")));
        Assert.All(events, e => Assert.Equal(e.Sequence, e.Data.GetProperty("sequence").GetInt64()));
    }

    [Fact]
    public async Task Text_deltas_with_newlines_concatenate_to_the_stored_message()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("First line\n", "data: not a frame\n\n", "id: 99\r\nlast").WithUsage(11, 7));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hello", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var streamed = string.Concat(events.Where(e => e.Type == "text.delta").Select(e => e.Str("text")));
        Assert.Equal("First line\ndata: not a frame\n\nid: 99\r\nlast", streamed);
        var messageCompleted = Assert.Single(events, e => e.Type == "message.completed");
        Assert.Equal(streamed, messageCompleted.Str("content"));
        Assert.Equal("stop", messageCompleted.Str("finishReason"));
        Assert.Equal(18, messageCompleted.Data.GetProperty("usage").GetProperty("totalTokens").GetInt32());
        var messages = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard);
        var stored = messages.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["user", "assistant"], stored.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(streamed, stored[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Tool_call_arguments_split_across_chunks_run_the_tool_and_feed_the_result_back()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_a", "calculate", "{\"expr", "ession\": \"(2+3)", "^2\"}")),
            ScriptedResponse.Text("The answer is ", "25."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "square of five", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var deltas = events.Where(e => e.Type == "tool_call.arguments.delta").ToList();
        Assert.Equal(3, deltas.Count);
        Assert.All(deltas, d => Assert.Equal("call_a", d.Str("callId")));
        Assert.Equal("{\"expression\": \"(2+3)^2\"}", string.Concat(deltas.Select(d => d.Str("delta"))));
        var completed = Assert.Single(events, e => e.Type == "tool_call.completed");
        Assert.Equal("25", completed.Str("result"));
        Assert.Equal(
            ["agent.status", "message.started", "tool_call.started"],
            events.Skip(1).Take(3).Select(e => e.Type));
        Assert.Equal(
            ["starting_generation", "tool_call_detected", "tools_executed", "continuing_generation"],
            events.Where(e => e.Type == "agent.status").Select(e => e.Str("status")));

        var second = model.Requests[1];
        var toolMessage = second.Messages.Single(m => m!["role"]!.GetValue<string>() == "tool");
        Assert.Equal("call_a", toolMessage!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("25", toolMessage["content"]!.GetValue<string>());
        Assert.Equal("run.completed", events[^1].Type);
    }

    [Fact]
    public async Task Two_interleaved_tool_calls_run_in_parallel_and_both_results_reach_the_model()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"6*7\"}"),
                new ScriptedToolCall("call_2", "get_time", "{\"timezone\":", "\"Asia/Tokyo\"}")),
            ScriptedResponse.Text("42, and it is late in Tokyo."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "both please", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var started = events.Where(e => e.Type == "tool_call.started").ToList();
        Assert.Equal([0, 1], started.Select(e => e.Data.GetProperty("index").GetInt32()));
        Assert.Equal(["call_1", "call_2"], started.Select(e => e.Str("callId")));
        foreach (var callId in new[] { "call_1", "call_2" })
        {
            var args = string.Concat(events.Where(e => e.Type == "tool_call.arguments.delta" && e.Str("callId") == callId).Select(e => e.Str("delta")));
            Assert.NotNull(JsonDocument.Parse(args));
        }

        var results = events.Where(e => e.Type == "tool_call.completed").ToDictionary(e => e.Str("callId")!, e => e.Str("result")!);
        Assert.Equal("42", results["call_1"]);
        Assert.Contains("Asia/Tokyo", results["call_2"]);
        var assistant = Assert.Single(events, e => e.Type == "message.completed" && e.Str("finishReason") == "tool_calls");
        Assert.Equal(2, assistant.Data.GetProperty("toolCalls").GetArrayLength());
        var toolMessages = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() == "tool").ToList();
        Assert.Equal(["call_1", "call_2"], toolMessages.Select(m => m!["tool_call_id"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task Max_depth_reached_ends_the_run_cleanly()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":\"1+1\"}")),
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_2", "calculate", "{\"expression\":\"2+2\"}")));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Agents:default:MaxDepth"] = "2" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "loop", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(2, model.Requests.Count);
        Assert.Equal(2, events.Count(e => e.Type == "tool_call.completed"));
        var status = Assert.Single(events, e => e.Type == "agent.status" && e.Str("status") == "max_depth_reached");
        Assert.Equal(2, status.Data.GetProperty("details").GetProperty("maxDepth").GetInt32());
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Equal("max_depth", events[^1].Str("stopReason"));

        // The thread is free again: the next message starts a run.
        model.Enqueue(ScriptedResponse.Text("done"));
        using var next = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "again" }, Guard);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Non_streaming_message_returns_the_final_message_tool_calls_and_usage()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_9", "calculate", "{\"expression\":\"17 * 23\"}")).WithUsage(10, 5),
            ScriptedResponse.Text("It is ", "391.").WithUsage(20, 3));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "17*23?", stream = false }, Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("It is 391.", body.GetProperty("message").GetProperty("content").GetString());
        var call = Assert.Single(body.GetProperty("toolCalls").EnumerateArray());
        Assert.Equal("391", call.GetProperty("result").GetString());
        Assert.Equal(38, body.GetProperty("usage").GetProperty("totalTokens").GetInt32());
    }
}
