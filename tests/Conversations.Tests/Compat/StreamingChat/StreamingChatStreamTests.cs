using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.StreamingChat;

/// <summary>Seed 003's <c>POST /chat/stream</c> and <c>POST /chat</c>, read the way its README's clients read them.</summary>
public sealed class StreamingChatStreamTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Plain_reply_arrives_as_chat_chunks_then_chat_complete_and_every_data_line_is_json()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello", ", world", "\nsecond line").WithUsage(5, 3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/chat/stream", new { message = "hi", reset_history = false, parallel_tools = true }, Guard);
        var events = await SeedClient.ReadDataLinesAsync(response, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal(["chat_chunk", "chat_chunk", "chat_chunk", "chat_complete"], events.Select(e => e.EventType()));
        Assert.Equal(["Hello", ", world", "\nsecond line"], events.Take(3).Select(e => e.Str("content")));
        var complete = events[^1];
        Assert.Equal("Hello, world\nsecond line", complete.Str("final_response"));
        Assert.Equal(8, complete.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal("default", complete.Str("agent"));
        Assert.Equal("chat-default", complete.Str("thread_id"));
    }

    [Fact]
    public async Task Tool_calls_stream_start_then_complete_with_the_real_results_then_the_reply()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"15 + 27\"}"),
                new ScriptedToolCall("call_2", "get_time", "{\"timezone\":\"Asia/Tokyo\"}")),
            ScriptedResponse.Text("15 + 27 = 42."));
        await using var app = GatewayApp.WithModel(model);

        var events = await app.Client.StreamChatAsync(new { message = "What's the time in Tokyo and what's 15 + 27?", reset_history = false, parallel_tools = true }, Guard);

        Assert.Equal(
            ["tool_call_start", "tool_call_start", "tool_call_complete", "tool_call_complete", "chat_chunk", "chat_complete"],
            events.Select(e => e.EventType()));
        var starts = events.Take(2).Select(e => e.GetProperty("tool_call")).ToList();
        Assert.Equal(["call_1", "call_2"], starts.Select(c => c.Str("id")));
        Assert.Equal(["calculate", "get_time"], starts.Select(c => c.Str("name")));
        Assert.Equal("15 + 27", starts[0].GetProperty("arguments").GetProperty("expression").GetString());
        var completed = events.Where(e => e.EventType() == "tool_call_complete").Select(e => e.GetProperty("tool_call")).ToDictionary(c => c.Str("id")!);
        Assert.Equal("42", completed["call_1"].Str("result"));
        Assert.Contains("Asia/Tokyo", completed["call_2"].Str("result"));
        Assert.Equal("complete", completed["call_1"].Str("status"));
        Assert.True(completed["call_1"].GetProperty("duration_ms").GetInt64() >= 0);
        Assert.Equal("15 + 27 = 42.", events[^1].Str("final_response"));
        // The results went back to the model.
        var toolMessages = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() == "tool").ToList();
        Assert.Contains(toolMessages, m => m!["content"]!.GetValue<string>() == "42");
    }

    [Fact]
    public async Task A_failing_tool_is_reported_as_tool_call_error_and_the_chat_goes_on()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_bad", "calculate", "{\"expression\":\"1/0\"}")),
            ScriptedResponse.Text("That cannot be computed."));
        await using var app = GatewayApp.WithModel(model);

        var events = await app.Client.StreamChatAsync(new { message = "1/0?" }, Guard);

        Assert.Equal(["tool_call_start", "tool_call_error", "chat_chunk", "chat_complete"], events.Select(e => e.EventType()));
        var failed = events[1].GetProperty("tool_call");
        Assert.Equal("call_bad", failed.Str("id"));
        Assert.False(string.IsNullOrEmpty(failed.Str("error")));
        Assert.Equal("error", failed.Str("status"));
    }

    [Fact]
    public async Task Model_failure_mid_run_ends_the_stream_with_an_error_event_after_the_partial_text()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("partial ", "answer ", "never sent").BreakAfter(3));
        await using var app = GatewayApp.WithModel(model);

        var events = await app.Client.StreamChatAsync(new { message = "hi" }, Guard);

        Assert.Equal(["chat_chunk", "chat_chunk", "error"], events.Select(e => e.EventType()));
        var error = events[^1];
        Assert.False(string.IsNullOrEmpty(error.Str("error")));
        Assert.Equal(error.Str("error"), error.Str("message"));
        Assert.StartsWith("model_", error.Str("code"));
        Assert.DoesNotContain("SECRET", error.GetRawText());
    }

    [Fact]
    public async Task History_is_kept_across_calls_for_the_same_agent_and_reset_history_starts_over()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hi Ada."), ScriptedResponse.Text("You are Ada."), ScriptedResponse.Text("I don't know."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        var first = await client.StreamChatAsync(new { message = "My name is Ada.", reset_history = false, parallel_tools = true }, Guard);
        var second = await client.StreamChatAsync(new { message = "What is my name?", reset_history = false, parallel_tools = true }, Guard);
        var third = await client.StreamChatAsync(new { message = "Who am I?", reset_history = true, parallel_tools = true }, Guard);

        Assert.Equal(["user:My name is Ada.", "assistant:Hi Ada.", "user:What is my name?"], Conversation(model.Requests[1]));
        Assert.Equal(["user:Who am I?"], Conversation(model.Requests[2]));
        Assert.Equal(first[^1].Str("thread_id"), second[^1].Str("thread_id"));
        Assert.NotEqual(second[^1].Str("thread_id"), third[^1].Str("thread_id"));
        Assert.Equal("I don't know.", third[^1].Str("final_response"));
    }

    [Fact]
    public async Task A_given_thread_id_continues_that_thread()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Noted."), ScriptedResponse.Text("Blue."));
        await using var app = GatewayApp.WithModel(model);

        await app.Client.StreamChatAsync(new { message = "My colour is blue.", thread_id = "seed3-thread" }, Guard);
        var second = await app.Client.StreamChatAsync(new { message = "My colour?", thread_id = "seed3-thread" }, Guard);

        Assert.Equal("seed3-thread", second[^1].Str("thread_id"));
        Assert.Equal(["user:My colour is blue.", "assistant:Noted.", "user:My colour?"], Conversation(model.Requests[1]));
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 4)]
    public async Task Parallel_tools_false_runs_the_tool_calls_one_at_a_time(bool parallelTools, int expectedMaxParallel)
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_1", "calculate", "{\"expression\":\"1+1\"}"),
                new ScriptedToolCall("call_2", "calculate", "{\"expression\":\"2+2\"}")),
            ScriptedResponse.Text("2 and 4."));
        await using var app = GatewayApp.WithModel(model);

        var events = await app.Client.StreamChatAsync(new { message = "both", parallel_tools = parallelTools }, Guard);
        using var native = await SseEvents.OpenEventStreamAsync(app.Client, $"/threads/{events[^1].Str("thread_id")}/events?after=0", null, Guard);
        var nativeEvents = await native.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(2, events.Count(e => e.EventType() == "tool_call_complete"));
        var detected = Assert.Single(nativeEvents, e => e.Type == "agent.status" && e.Str("status") == "tool_call_detected");
        Assert.Equal(expectedMaxParallel, detected.Data.GetProperty("details").GetProperty("maxParallelTools").GetInt32());
    }

    [Fact]
    public async Task A_second_message_while_the_agents_run_is_active_gets_409_and_an_error_event()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        // No heartbeat for ten minutes: the headers must not wait for a first write.
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:10:00" });
        var client = app.Client;

        // The headers arrive once the run has started, before any event.
        using var first = await client.PostStreamAsync("/chat/stream", new { message = "take your time" }, Guard);
        using var second = await client.PostStreamAsync("/chat/stream", new { message = "me too" }, Guard);
        var rejected = await SeedClient.ReadDataLinesAsync(second, Guard);

        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        var error = Assert.Single(rejected);
        Assert.Equal("error", error.EventType());
        Assert.Equal("run_active", error.Str("code"));

        // Cancelled through the native API, the first stream ends with the dialect's error.
        var thread = await client.GetFromJsonAsync<JsonElement>("/threads/chat-default", Guard);
        var runId = thread.GetProperty("activeRunId").GetString();
        using var cancel = await client.PostAsync($"/threads/chat-default/runs/{runId}/cancel", null, Guard);
        var firstEvents = await SeedClient.ReadDataLinesAsync(first, Guard);
        Assert.Equal("error", firstEvents[^1].EventType());
        Assert.Equal("cancelled", firstEvents[^1].Str("code"));
    }

    [Theory]
    [InlineData("{}", "message")]
    [InlineData("{\"message\":\"   \"}", "message")]
    [InlineData("{\"message\":5}", "message")]
    [InlineData("{\"message\":\"hi\",\"agent\":\"nobody\"}", "agent")]
    [InlineData("{\"message\":\"hi\",\"agent\":\"no spaces\"}", "agent")]
    [InlineData("{\"message\":\"hi\",\"thread_id\":\"t1\",\"reset_history\":true}", "reset_history")]
    [InlineData("{\"message\":\"hi\",\"thread_id\":\"bad id!\"}", "thread_id")]
    public async Task Bad_input_gets_400_naming_the_field(string body, string field)
    {
        await using var app = new GatewayApp();
        foreach (var path in new[] { "/chat/stream", "/chat" })
        {
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            using var response = await app.Client.PostAsync(path, content, Guard);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{path}: {problem}");
            Assert.Contains(field, problem.GetProperty("detail").GetString());
        }
    }

    [Fact]
    public async Task Non_streaming_chat_returns_the_reply_its_tool_calls_with_results_and_usage()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_9", "calculate", "{\"expression\":\"17 * 23\"}")).WithUsage(10, 5),
            ScriptedResponse.Text("It is ", "391.").WithUsage(20, 3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostAsJsonAsync("/chat", new { message = "17*23?", reset_history = false, parallel_tools = true }, Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("It is 391.", body.Str("response"));
        Assert.Equal("default", body.Str("agent"));
        var call = Assert.Single(body.GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("calculate", call.Str("name"));
        Assert.Equal("391", call.Str("result"));
        Assert.Equal("17 * 23", call.GetProperty("arguments").GetProperty("expression").GetString());
        Assert.Equal(38, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Non_streaming_chat_reports_a_model_failure_as_502()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("partial ", "never").BreakAfter(2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostAsJsonAsync("/chat", new { message = "hi" }, Guard);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.False(string.IsNullOrEmpty(problem.Str("detail")));
        Assert.Equal("partial ", problem.Str("partial_response"));
    }

    [Fact]
    public async Task Health_reports_status_and_the_available_tools()
    {
        await using var app = new GatewayApp();

        var health = await app.Client.GetFromJsonAsync<JsonElement>("/health", Guard);

        Assert.Equal("healthy", health.Str("status"));
        var tools = health.GetProperty("tools").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Contains("calculate", tools);
        Assert.Contains("get_time", tools);
    }

    private static List<string> Conversation(RecordedRequest request) =>
        [.. request.Messages
            .Where(m => m!["role"]!.GetValue<string>() is "user" or "assistant")
            .Select(m => $"{m!["role"]!.GetValue<string>()}:{m["content"]?.GetValue<string>()}")];
}
