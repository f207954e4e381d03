using System.Net;
using System.Text.Json;
using Conversations.Tests.Compat.OpenAi;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.Langbase;

/// <summary>Seed 002's Langbase surface, read the way its JavaScript example reads it.</summary>
public sealed class LangbaseTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static object UserTurn(string content, bool stream = true, string? threadId = null) =>
        threadId is null
            ? new { messages = new[] { new { role = "user", content } }, stream }
            : new { messages = new[] { new { role = "user", content } }, stream, threadId };

    [Fact]
    public async Task Pipe_run_streams_the_seed_chunk_format_with_lb_thread_id()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello", " there").WithUsage(2, 4));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync("/v1/pipes/run", UserTurn("Hello!"), cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        Assert.StartsWith("thread_", response.Headers.GetValues("lb-thread-id").Single());
        Assert.Equal("[DONE]", data[^1]);
        Assert.Equal(3, chunks.Count);
        // Exactly the seed's shape: content deltas without a role, then an empty delta with finish_reason and usage.
        Assert.Equal("{\"content\":\"Hello\"}", chunks[0].Delta().GetRawText());
        Assert.Equal("{\"content\":\" there\"}", chunks[1].Delta().GetRawText());
        Assert.Equal("{}", chunks[2].Delta().GetRawText());
        Assert.Equal("stop", chunks[2].Choice().Str("finish_reason"));
        Assert.Equal(6, chunks[2].GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.All(chunks, c =>
        {
            Assert.Equal(
                ["id", "object", "created", "model", "system_fingerprint", "choices"],
                c.EnumerateObject().Select(p => p.Name).Where(n => n != "usage"));
            Assert.Equal(
                ["index", "delta", "logprobs", "finish_reason"],
                c.Choice().EnumerateObject().Select(p => p.Name));
        });
    }

    [Fact]
    public async Task Pipe_run_streams_a_tool_call_and_the_answer()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_time", "get_time", "{\"timezone\":", "\"Asia/Tokyo\"}")),
            ScriptedResponse.Text("It is late in Tokyo."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync("/v1/pipes/run", UserTurn("Time in Tokyo?"), cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        var calls = chunks.ToolCallDeltas();
        Assert.Equal("call_time", calls[0].Str("id"));
        Assert.Equal("get_time", calls[0].GetProperty("function").Str("name"));
        Assert.Equal("{\"timezone\":\"Asia/Tokyo\"}", string.Concat(calls.Select(c => c.GetProperty("function").Str("arguments"))));
        Assert.Equal("It is late in Tokyo.", chunks.Text());
        Assert.Equal("[DONE]", data[^1]);
        var toolResult = model.Requests[1].Messages.Single(m => m!["role"]!.GetValue<string>() == "tool")!["content"]!.GetValue<string>();
        Assert.Contains("Asia/Tokyo", toolResult);
    }

    [Fact]
    public async Task Pipe_run_failure_mid_stream_is_an_error_chunk_with_lb_thread_id_set()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Half", " of it", " and more").BreakAfter(2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync("/v1/pipes/run", UserTurn("go"), cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        Assert.True(response.Headers.Contains("lb-thread-id"));
        Assert.DoesNotContain("[DONE]", data);
        Assert.Equal("Half", chunks.Text());
        Assert.Equal("model_error", chunks[^1].GetProperty("error").Str("code"));
        Assert.Equal("server_error", chunks[^1].GetProperty("error").Str("type"));
    }

    [Fact]
    public async Task Continuing_with_threadId_keeps_history_and_returns_the_same_lb_thread_id()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hi Ada."), ScriptedResponse.Text("Your name is Ada."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var first = await client.PostJsonAsync("/v1/pipes/run", UserTurn("My name is Ada.", stream: false), cancellationToken: Guard);
        var threadId = first.Headers.GetValues("lb-thread-id").Single();
        var firstBody = await first.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(threadId, firstBody.Str("threadId"));

        using var second = await client.PostJsonAsync("/v1/pipes/run", UserTurn("What is my name?", threadId: threadId), cancellationToken: Guard);
        var chunks = (await second.ReadDataLinesAsync(Guard)).Chunks();

        Assert.Equal(threadId, second.Headers.GetValues("lb-thread-id").Single());
        Assert.Equal("Your name is Ada.", chunks.Text());
        var sent = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() != "system").Select(m => m!["content"]!.GetValue<string>());
        Assert.Equal(["My name is Ada.", "Hi Ada.", "What is my name?"], sent);

        var messages = await client.GetFromJsonAsync<JsonElement>($"/v1/threads/{threadId}/messages", Guard);
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.EnumerateArray().Select(m => m.Str("role")));
        Assert.All(messages.EnumerateArray(), m => Assert.Equal(threadId, m.Str("thread_id")));
    }

    [Fact]
    public async Task Non_streaming_pipe_run_returns_completion_threadId_and_the_chat_completion()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_c", "calculate", "{\"expression\":\"2^10\"}")),
            ScriptedResponse.Text("1024").WithUsage(28, 36));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync("/v1/pipes/run", new { messages = new[] { new { role = "user", content = "2^10?" } } }, cancellationToken: Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1024", body.Str("completion"));
        Assert.Equal(response.Headers.GetValues("lb-thread-id").Single(), body.Str("threadId"));
        Assert.Equal("chat.completion", body.Str("object"));
        Assert.StartsWith("chatcmpl-", body.Str("id"));
        Assert.Equal("fake-model", body.Str("model"));
        Assert.False(string.IsNullOrEmpty(body.Str("system_fingerprint")));
        Assert.Equal("1024", body.GetProperty("choices")[0].GetProperty("message").Str("content"));
        Assert.Equal("stop", body.GetProperty("choices")[0].Str("finish_reason"));
        Assert.True(body.GetProperty("usage").GetProperty("total_tokens").GetInt32() >= 64);
        Assert.Equal(body.Str("id"), body.GetProperty("raw").Str("id"));
        Assert.Equal("1024", body.GetProperty("raw").GetProperty("choices")[0].GetProperty("message").Str("content"));
    }

    [Fact]
    public async Task Variables_replace_placeholders_in_message_contents()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("ok"), ScriptedResponse.Text("ok"));
        await using var app = GatewayApp.WithModel(model);

        using var asObject = await app.Client.PostJsonAsync(
            "/v1/pipes/run",
            new { messages = new[] { new { role = "user", content = "Tell {{ who }} about {{topic}} and {{unknown}}." } }, variables = new { who = "Ada", topic = "engines" } },
            cancellationToken: Guard);
        using var asArray = await app.Client.PostJsonAsync(
            "/v1/pipes/run",
            new { messages = new[] { new { role = "user", content = "Hi {{name}}" } }, variables = new[] { new { name = "name", value = "Bob" } } },
            cancellationToken: Guard);

        Assert.Equal(HttpStatusCode.OK, asObject.StatusCode);
        Assert.Equal(HttpStatusCode.OK, asArray.StatusCode);
        Assert.Equal("Tell Ada about engines and {{unknown}}.", model.Requests[0].Messages[^1]!["content"]!.GetValue<string>());
        Assert.Equal("Hi Bob", model.Requests[1].Messages[^1]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_pipe_run_requests_are_400_naming_the_field()
    {
        await using var app = new GatewayApp();

        using var noMessages = await app.Client.PostJsonAsync("/v1/pipes/run", new { stream = true }, cancellationToken: Guard);
        using var lastNotUser = await app.Client.PostJsonAsync(
            "/v1/pipes/run", new { messages = new[] { new { role = "assistant", content = "hi" } } }, cancellationToken: Guard);
        using var badVariables = await app.Client.PostJsonAsync(
            "/v1/pipes/run", new { messages = new[] { new { role = "user", content = "hi" } }, variables = "x" }, cancellationToken: Guard);

        foreach (var (response, param) in new[] { (noMessages, "messages"), (lastNotUser, "messages"), (badVariables, "variables") })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
            Assert.Equal(param, body.GetProperty("error").Str("param"));
        }
    }

    [Fact]
    public async Task Threads_are_created_appended_to_without_a_run_and_listed_in_order_then_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Billing it is."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var create = await client.PostJsonAsync(
            "/v1/threads",
            new { threadId = "custom-thread-123", metadata = new { department = "billing" }, messages = new[] { new { role = "user", content = "Hello, I need help!" } } },
            cancellationToken: Guard);
        var thread = await create.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(HttpStatusCode.OK, create.StatusCode);
        Assert.Equal("custom-thread-123", thread.Str("id"));
        Assert.Equal("thread", thread.Str("object"));
        Assert.True(thread.GetProperty("created_at").GetInt64() > 1_700_000_000);
        Assert.Equal("billing", thread.GetProperty("metadata").Str("department"));

        using var append = await client.PostJsonAsync(
            "/v1/threads/custom-thread-123/messages",
            new
            {
                messages = new[]
                {
                    new { role = "user", content = "Can you help me with billing?" },
                    new { role = "assistant", content = "Sure! I can help with billing questions." },
                },
            },
            cancellationToken: Guard);
        var appended = await append.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(HttpStatusCode.OK, append.StatusCode);
        Assert.Equal(2, appended.GetArrayLength());
        Assert.Empty(model.Requests);
        var message = appended[1];
        Assert.StartsWith("msg_", message.Str("id"));
        Assert.Equal("custom-thread-123", message.Str("thread_id"));
        Assert.Equal("assistant", message.Str("role"));
        Assert.Equal(JsonValueKind.Null, message.GetProperty("tool_call_id").ValueKind);
        Assert.Equal(0, message.GetProperty("tool_calls").GetArrayLength());
        Assert.Equal(0, message.GetProperty("attachments").GetArrayLength());

        var listed = await client.GetFromJsonAsync<JsonElement>("/v1/threads/custom-thread-123/messages", Guard);
        Assert.Equal(
            ["Hello, I need help!", "Can you help me with billing?", "Sure! I can help with billing questions."],
            listed.EnumerateArray().Select(m => m.Str("content")));

        using var run = await client.PostJsonAsync("/v1/pipes/run", UserTurn("Invoice 42 please.", stream: false, threadId: "custom-thread-123"), cancellationToken: Guard);
        Assert.Equal("custom-thread-123", run.Headers.GetValues("lb-thread-id").Single());
        var sent = model.Requests[0].Messages.Where(m => m!["role"]!.GetValue<string>() != "system").Select(m => m!["content"]!.GetValue<string>());
        Assert.Equal(
            ["Hello, I need help!", "Can you help me with billing?", "Sure! I can help with billing questions.", "Invoice 42 please."],
            sent);
    }

    [Fact]
    public async Task Thread_errors_are_404_409_and_400_in_the_error_shape()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var missing = await client.GetAsync("/v1/threads/nope/messages", Guard);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("thread_not_found", (await missing.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("error").Str("code"));

        using var appendMissing = await client.PostJsonAsync("/v1/threads/nope/messages", new { messages = new[] { new { role = "user", content = "x" } } }, cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.NotFound, appendMissing.StatusCode);

        using var created = await client.PostJsonAsync("/v1/threads", new { threadId = "t-busy" }, cancellationToken: Guard);
        using var again = await client.PostJsonAsync("/v1/threads", new { threadId = "t-busy" }, cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);

        using var toolRole = await client.PostJsonAsync("/v1/threads/t-busy/messages", new { messages = new[] { new { role = "tool", content = "42" } } }, cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.BadRequest, toolRole.StatusCode);
        Assert.Equal("messages[0].role", (await toolRole.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("error").Str("param"));

        // While a run is active, appending is refused, and so is a second run.
        using var running = await client.PostJsonAsync("/v1/pipes/run", UserTurn("slow", threadId: "t-busy"), cancellationToken: Guard);
        await model.WaitForRequestAsync(1, Guard);
        using var appendBusy = await client.PostJsonAsync("/v1/threads/t-busy/messages", new[] { new { role = "user", content = "x" } }, cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.Conflict, appendBusy.StatusCode);
        Assert.Equal("run_active", (await appendBusy.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("error").Str("code"));
        using var runBusy = await client.PostJsonAsync("/v1/pipes/run", UserTurn("again", threadId: "t-busy"), cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.Conflict, runBusy.StatusCode);
        Assert.Equal("t-busy", runBusy.Headers.GetValues("lb-thread-id").Single());
    }

    [Fact]
    public async Task Root_reports_server_status()
    {
        await using var app = new GatewayApp();

        var status = await app.Client.GetFromJsonAsync<JsonElement>("/", Guard);

        Assert.Equal("healthy", status.Str("status"));
        Assert.True(status.TryGetProperty("timestamp", out _));
    }
}
