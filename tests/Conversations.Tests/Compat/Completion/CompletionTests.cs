using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.Completion;

/// <summary>Seed 001: <c>POST /completion</c>, JSON or SSE chunks read the way the seed's clients read them.</summary>
public sealed class CompletionTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Non_streaming_reply_is_one_completion_response_with_a_new_conversation_id()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello ", "there.").WithUsage(9, 2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostAsJsonAsync("/completion", new { message = "Hi", temperature = 0.5, max_tokens = 64, project_id = "p-1", sources = new[] { "kb" } }, Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Hello there.", body.GetProperty("content").GetString());
        Assert.Equal("fake-model", body.GetProperty("model").GetString());
        Assert.Equal("default", body.GetProperty("agent").GetString());
        var conversationId = body.GetProperty("conversation_id").GetString()!;
        Assert.StartsWith("thread_", conversationId);
        var metadata = body.GetProperty("metadata");
        Assert.Equal("stop", metadata.GetProperty("finish_reason").GetString());
        Assert.Equal(11, metadata.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, metadata.GetProperty("tool_calls").GetArrayLength());
        Assert.Equal("p-1", metadata.GetProperty("project_id").GetString());
        Assert.Equal("kb", metadata.GetProperty("sources")[0].GetString());
        Assert.StartsWith("run_", metadata.GetProperty("run_id").GetString());
        Assert.False(metadata.TryGetProperty("type", out _));

        var request = Assert.Single(model.Requests);
        Assert.Equal(0.5, request.Body!["temperature"]!.GetValue<double>(), 3);
        var thread = await app.Client.GetFromJsonAsync<JsonElement>($"/threads/{conversationId}", Guard);
        Assert.Equal(2, thread.GetProperty("messageCount").GetInt32());
    }

    [Fact]
    public async Task Streaming_tool_call_arrives_as_metadata_chunks_then_text_then_a_done_chunk()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_a", "calculate", "{\"expression\":", "\"17 * 23\"}")).WithUsage(10, 5),
            ScriptedResponse.Text("It is ", "391.").WithUsage(20, 3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/completion", new { message = "17*23?", stream = true }, Guard);
        var (lines, chunks) = await ReadChunksAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        Assert.DoesNotContain(lines, line => line.StartsWith("event:", StringComparison.Ordinal));

        var conversationId = chunks[0].GetProperty("conversation_id").GetString();
        Assert.StartsWith("thread_", conversationId);
        Assert.Equal("start", Type(chunks[0]));
        Assert.All(chunks, c => Assert.Equal(conversationId, c.GetProperty("conversation_id").GetString()));
        Assert.All(chunks[..^1], c => Assert.False(c.GetProperty("done").GetBoolean()));

        var toolChunks = chunks.Where(c => Type(c) == "tool_call").Select(c => c.GetProperty("metadata").GetProperty("tool_call")).ToList();
        Assert.Equal(["started", "completed"], toolChunks.Select(t => t.GetProperty("status").GetString()));
        Assert.All(toolChunks, t => Assert.Equal("call_a", t.GetProperty("id").GetString()));
        Assert.Equal("calculate", toolChunks[0].GetProperty("name").GetString());
        Assert.Equal("391", toolChunks[1].GetProperty("result").GetString());
        Assert.Equal("17 * 23", JsonDocument.Parse(toolChunks[1].GetProperty("arguments").GetString()!).RootElement.GetProperty("expression").GetString());
        Assert.All(chunks.Where(c => Type(c) == "tool_call"), c => Assert.Equal("", c.GetProperty("content").GetString()));
        var firstText = chunks.FindIndex(c => Type(c) == "text");
        Assert.True(firstText > chunks.FindLastIndex(c => Type(c) == "tool_call"));
        Assert.Equal("It is 391.", string.Concat(chunks.Where(c => !c.GetProperty("done").GetBoolean()).Select(c => c.GetProperty("content").GetString())));

        var last = chunks[^1];
        Assert.True(last.GetProperty("done").GetBoolean());
        Assert.Equal("", last.GetProperty("content").GetString());
        Assert.False(last.TryGetProperty("error", out _));
        var metadata = last.GetProperty("metadata");
        Assert.Equal("done", metadata.GetProperty("type").GetString());
        Assert.Equal("stop", metadata.GetProperty("finish_reason").GetString());
        Assert.Equal(38, metadata.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal("391", Assert.Single(metadata.GetProperty("tool_calls").EnumerateArray()).GetProperty("result").GetString());
    }

    [Fact]
    public async Task Non_streaming_tool_call_is_reported_in_metadata()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_t", "get_time", "{\"timezone\":\"Asia/Tokyo\"}")),
            ScriptedResponse.Text("It is late in Tokyo."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostAsJsonAsync("/completion", new { message = "Time in Tokyo?", stream = false }, Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("It is late in Tokyo.", body.GetProperty("content").GetString());
        var call = Assert.Single(body.GetProperty("metadata").GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("get_time", call.GetProperty("name").GetString());
        Assert.Equal("completed", call.GetProperty("status").GetString());
        Assert.Contains("Asia/Tokyo", call.GetProperty("result").GetString());
    }

    [Fact]
    public async Task Model_failure_mid_stream_ends_with_the_seeds_error_chunk()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Partial ", "answer ", "never ends").BreakAfter(2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/completion", new { message = "go", stream = true, conversation_id = "conv-broken" }, Guard);
        var (_, chunks) = await ReadChunksAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Partial ", string.Concat(chunks.Select(c => c.GetProperty("content").GetString())));
        var last = chunks[^1];
        Assert.True(last.GetProperty("done").GetBoolean());
        Assert.Equal("", last.GetProperty("content").GetString());
        Assert.False(string.IsNullOrWhiteSpace(last.GetProperty("error").GetString()));
        Assert.Equal("conv-broken", last.GetProperty("conversation_id").GetString());
        Assert.Single(chunks, c => c.GetProperty("done").GetBoolean());
    }

    [Fact]
    public async Task Model_failure_without_streaming_is_a_500_error_response()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Partial ", "answer").BreakAfter(2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostAsJsonAsync("/completion", new { message = "go" }, Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.StartsWith("Completion failed: ", body.GetProperty("error").GetString());
        Assert.Equal(body.GetProperty("error").GetString(), body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task History_seeds_a_new_conversation_and_the_same_id_continues_it()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Noted, Ada."), ScriptedResponse.Text("Your name is Ada."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using (var first = await client.PostAsJsonAsync("/completion", new
        {
            message = "Remember my name.",
            conversation_id = "conv-ada",
            conversation_history = new[] { new { role = "user", content = "I am Ada." }, new { role = "assistant", content = "Hi Ada!" } },
        }, Guard))
        {
            var body = await first.Content.ReadFromJsonAsync<JsonElement>(Guard);
            Assert.Equal("conv-ada", body.GetProperty("conversation_id").GetString());
        }

        using var second = await client.PostStreamAsync("/completion", new
        {
            message = "What is my name?",
            conversation_id = "conv-ada",
            stream = true,
            // Ignored: the conversation exists and has its own history.
            conversation_history = new[] { new { role = "user", content = "I am Bob." } },
        }, Guard);
        var (_, chunks) = await ReadChunksAsync(second);

        Assert.Equal("Your name is Ada.", string.Concat(chunks.Select(c => c.GetProperty("content").GetString())));
        Assert.Equal(
            [("user", "I am Ada."), ("assistant", "Hi Ada!"), ("user", "Remember my name.")],
            Sent(model.Requests[0]));
        Assert.Equal(
            [("user", "I am Ada."), ("assistant", "Hi Ada!"), ("user", "Remember my name."), ("assistant", "Noted, Ada."), ("user", "What is my name?")],
            Sent(model.Requests[1]));
    }

    [Fact]
    public async Task Streaming_with_a_model_that_cannot_stream_is_refused_with_the_seeds_400()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Whole answer."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["OpenAI:NonStreamingModels:0"] = "gpt-5" });
        var client = app.Client;

        using var refused = await client.PostAsJsonAsync("/completion", new { message = "Hi", model = "gpt-5", stream = true }, Guard);
        var error = await refused.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        const string expected = "Model 'gpt-5' does not support streaming. Please set stream=false or use a streaming-capable model.";
        Assert.Equal(expected, error.GetProperty("error").GetString());
        Assert.Equal(expected, error.GetProperty("detail").GetString());
        Assert.EndsWith("Z", error.GetProperty("timestamp").GetString());
        Assert.True(DateTimeOffset.TryParse(error.GetProperty("timestamp").GetString(), CultureInfo.InvariantCulture, out _));
        Assert.Empty(model.Requests);

        using var whole = await client.PostAsJsonAsync("/completion", new { message = "Hi", model = "gpt-5", stream = false }, Guard);
        var body = await whole.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal("Whole answer.", body.GetProperty("content").GetString());
        var request = Assert.Single(model.Requests);
        Assert.Equal("gpt-5", request.Model);
        // A model that cannot stream is called whole.
        Assert.False(request.Stream);
    }

    [Fact]
    public async Task Default_model_listed_as_non_streaming_is_refused_for_streaming()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["OpenAI:NonStreamingModels"] = "o1-pro, fake-model" });

        using var refused = await app.Client.PostAsJsonAsync("/completion", new { message = "Hi", stream = true }, Guard);
        var error = await refused.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.StartsWith("Model 'fake-model' does not support streaming.", error.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Second_message_while_a_run_is_active_is_a_409_error_response()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        // Headers arrive once the run has started.
        using var first = await client.PostStreamAsync("/completion", new { message = "take your time", conversation_id = "conv-busy", stream = true }, Guard);
        using var second = await client.PostAsJsonAsync("/completion", new { message = "me too", conversation_id = "conv-busy" }, Guard);
        var body = await second.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains("still active", body.GetProperty("error").GetString());
        Assert.True(body.TryGetProperty("timestamp", out _));
    }

    [Theory]
    [InlineData("{}", "message")]
    [InlineData("{\"message\":\"\"}", "message")]
    [InlineData("{\"message\":\"hi\",\"agent\":\"nobody\"}", "Agent 'nobody'")]
    [InlineData("{\"message\":\"hi\",\"stream\":\"yes\"}", "stream")]
    [InlineData("{\"message\":\"hi\",\"temperature\":5}", "temperature")]
    [InlineData("{\"message\":\"hi\",\"conversation_id\":\"no spaces\"}", "conversation_id")]
    [InlineData("{\"message\":\"hi\",\"conversation_history\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "conversation_history[0].role")]
    [InlineData("[1,2]", "body")]
    public async Task Bad_request_is_a_400_error_response_naming_the_field(string json, string field)
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostAsync("/completion", new StringContent(json, Encoding.UTF8, "application/json"), Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(field, body.GetProperty("error").GetString());
        Assert.Equal(body.GetProperty("error").GetString(), body.GetProperty("detail").GetString());
        Assert.True(body.TryGetProperty("timestamp", out _));
    }

    [Fact]
    public async Task Demo_model_streams_a_calculation_with_its_tool_call()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostStreamAsync("/completion", new { message = "what is 17 * 23?", stream = true }, Guard);
        var (_, chunks) = await ReadChunksAsync(response);

        Assert.Contains(chunks, c => Type(c) == "tool_call" && c.GetProperty("metadata").GetProperty("tool_call").TryGetProperty("result", out var r) && r.GetString() == "391");
        Assert.Contains("391", string.Concat(chunks.Select(c => c.GetProperty("content").GetString())));
        Assert.True(chunks[^1].GetProperty("done").GetBoolean());
    }

    /// <summary>As the seed's clients read the stream: split on '\n', parse each <c>data: </c> line.</summary>
    private static async Task<(string[] Lines, List<JsonElement> Chunks)> ReadChunksAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync(Guard);
        var lines = body.Split('\n');
        var chunks = lines
            .Where(line => line.StartsWith("data: ", StringComparison.Ordinal))
            .Select(line => JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone())
            .ToList();
        return (lines, chunks);
    }

    private static string? Type(JsonElement chunk) =>
        chunk.GetProperty("metadata").TryGetProperty("type", out var type) ? type.GetString() : null;

    private static List<(string, string?)> Sent(RecordedRequest request) => request.Messages
        .Select(m => (m!["role"]!.GetValue<string>(), m["content"]?.GetValue<string>()))
        .Where(m => m.Item1 != "system")
        .ToList();
}
