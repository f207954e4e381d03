using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.Axmp;

/// <summary>Seed 000: <c>POST /conversations/{thread_id}/completion</c>, read as Anthropic-style SSE events.</summary>
public sealed class AxmpCompletionTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Plain_reply_streams_as_one_message_with_one_text_block()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello", ", ", "world.").WithUsage(12, 3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync(
            "/conversations/axmp-plain/completion", new { prompt = "Say hello", model = "other-model", temperature = 0.2, stream_mode = "messages" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(response, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        Assert.All(events, e => Assert.Equal(e.Type, e.Event));
        Assert.Equal(
            ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            events.Select(e => e.Type));

        var message = events[0].Data.GetProperty("message");
        Assert.Equal("axmp-plain", message.GetProperty("thread_id").GetString());
        Assert.Equal("other-model", message.GetProperty("model").GetString());
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.StartsWith("run_", message.GetProperty("id").GetString());
        Assert.Equal(0, message.GetProperty("content").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, message.GetProperty("stop_reason").ValueKind);

        var block = events[1].Data.GetProperty("content_block");
        Assert.Equal(0, events[1].Index);
        Assert.Equal("text", block.GetProperty("type").GetString());
        Assert.Equal("", block.GetProperty("text").GetString());
        Assert.All(events.Skip(1).Take(5), e => Assert.Equal(0, e.Index));
        Assert.Equal("Hello, world.", events.Text());

        var delta = events[^2].Data;
        Assert.Equal("end_turn", delta.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal(12, delta.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(3, delta.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal("axmp-plain", events[^1].Data.GetProperty("message").GetProperty("thread_id").GetString());

        var request = Assert.Single(model.Requests);
        Assert.Equal("other-model", request.Model);
        Assert.Equal(0.2, request.Body!["temperature"]!.GetValue<double>(), 3);
    }

    [Fact]
    public async Task Tool_call_result_and_answer_are_blocks_of_one_message_in_order()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_a", "calculate", "{\"expression\":", " \"17 * 23\"}")),
            ScriptedResponse.Text("It is ", "391."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/conversations/axmp-tool/completion", new { prompt = "17*23?" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(response, Guard);

        Assert.All(events, e => Assert.Equal(e.Type, e.Event));
        Assert.Equal(
            [
                "message_start",
                "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                "content_block_start", "content_block_stop",
                "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                "message_delta", "message_stop",
            ],
            events.Select(e => e.Type));

        var toolUse = events[1].Data.GetProperty("content_block");
        Assert.Equal(0, events[1].Index);
        Assert.Equal("tool_use", toolUse.GetProperty("type").GetString());
        Assert.Equal("call_a", toolUse.GetProperty("id").GetString());
        Assert.Equal("calculate", toolUse.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Object, toolUse.GetProperty("input").ValueKind);
        var partialJson = string.Concat(events.Skip(2).Take(2).Select(e =>
        {
            Assert.Equal(0, e.Index);
            Assert.Equal("input_json_delta", e.Data.GetProperty("delta").GetProperty("type").GetString());
            return e.Data.GetProperty("delta").GetProperty("partial_json").GetString();
        }));
        Assert.Equal("17 * 23", JsonDocument.Parse(partialJson).RootElement.GetProperty("expression").GetString());

        var toolResult = events[5].Data.GetProperty("content_block");
        Assert.Equal(1, events[5].Index);
        Assert.Equal("tool_result", toolResult.GetProperty("type").GetString());
        Assert.Equal("call_a", toolResult.GetProperty("tool_use_id").GetString());
        Assert.Equal("391", toolResult.GetProperty("content").GetString());
        Assert.False(toolResult.GetProperty("is_error").GetBoolean());

        Assert.Equal(2, events[7].Index);
        Assert.Equal("text", events[7].Data.GetProperty("content_block").GetProperty("type").GetString());
        Assert.Equal("It is 391.", events.Text());
        Assert.Equal("end_turn", events[^2].Data.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal("391", model.Requests[1].Messages.Single(m => m!["role"]!.GetValue<string>() == "tool")!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Interleaved_tool_calls_become_one_whole_block_each()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"6*7\"}"),
                new ScriptedToolCall("call_2", "get_time", "{\"timezone\":", "\"Asia/Tokyo\"}")),
            ScriptedResponse.Text("Done."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/conversations/axmp-two-tools/completion", new { prompt = "both" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(response, Guard);

        // Blocks never overlap: each start is followed by its own deltas and stop before the next start.
        int? open = null;
        var next = 0;
        var arguments = new Dictionary<string, string>();
        string? openCall = null;
        foreach (var e in events.Where(e => e.Type.StartsWith("content_block_", StringComparison.Ordinal)))
        {
            switch (e.Type)
            {
                case "content_block_start":
                    Assert.Null(open);
                    Assert.Equal(next++, e.Index);
                    open = e.Index;
                    var block = e.Data.GetProperty("content_block");
                    openCall = block.GetProperty("type").GetString() == "tool_use" ? block.GetProperty("id").GetString() : null;
                    if (openCall is not null)
                    {
                        arguments[openCall] = "";
                    }

                    break;
                case "content_block_delta":
                    Assert.Equal(open, e.Index);
                    if (openCall is not null)
                    {
                        arguments[openCall] += e.Data.GetProperty("delta").GetProperty("partial_json").GetString();
                    }

                    break;
                case "content_block_stop":
                    Assert.Equal(open, e.Index);
                    open = null;
                    break;
            }
        }

        Assert.Equal("6*7", JsonDocument.Parse(arguments["call_1"]).RootElement.GetProperty("expression").GetString());
        Assert.Equal("Asia/Tokyo", JsonDocument.Parse(arguments["call_2"]).RootElement.GetProperty("timezone").GetString());
        var results = events
            .Where(e => e.Type == "content_block_start" && e.Data.GetProperty("content_block").GetProperty("type").GetString() == "tool_result")
            .Select(e => e.Data.GetProperty("content_block"))
            .ToDictionary(b => b.GetProperty("tool_use_id").GetString()!, b => b.GetProperty("content").GetString()!);
        Assert.Equal("42", results["call_1"]);
        Assert.Contains("Asia/Tokyo", results["call_2"]);
        Assert.Equal("message_stop", events[^1].Type);
    }

    [Fact]
    public async Task Model_failure_mid_run_ends_the_stream_with_an_error_event()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Partial ", "answer ", "never ends").BreakAfter(2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostStreamAsync("/conversations/axmp-broken/completion", new { prompt = "go" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(response, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message_start", events[0].Type);
        Assert.Equal("Partial ", events.Text());
        var error = events[^1];
        Assert.Equal("error", error.Event);
        Assert.Equal("error", error.Type);
        Assert.Equal("api_error", error.Data.GetProperty("error").GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.Data.GetProperty("error").GetProperty("message").GetString()));
        Assert.DoesNotContain(events, e => e.Type == "message_stop");
    }

    [Fact]
    public async Task Same_thread_id_continues_the_conversation_the_first_call_created()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello Ada."), ScriptedResponse.Text("Your name is Ada."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using (var first = await client.PostStreamAsync("/conversations/axmp-memory/completion", new { prompt = "My name is Ada." }, Guard))
        {
            Assert.Equal("Hello Ada.", (await AnthropicWire.ReadAllAsync(first, Guard)).Text());
        }

        using var second = await client.PostStreamAsync("/conversations/axmp-memory/completion", new { prompt = "What is my name?" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(second, Guard);

        Assert.Equal("Your name is Ada.", events.Text());
        Assert.Equal("axmp-memory", events[0].Data.GetProperty("message").GetProperty("thread_id").GetString());
        var sent = model.Requests[1].Messages.Select(m => (m!["role"]!.GetValue<string>(), m["content"]?.GetValue<string>())).ToList();
        Assert.Equal(
            [("user", "My name is Ada."), ("assistant", "Hello Ada."), ("user", "What is my name?")],
            sent.Where(m => m.Item1 != "system"));
        var thread = await client.GetFromJsonAsync<JsonElement>("/threads/axmp-memory", Guard);
        Assert.Equal(4, thread.GetProperty("messageCount").GetInt32());
    }

    [Fact]
    public async Task Second_prompt_while_a_run_is_active_is_rejected_with_409()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        // Headers arrive once the run has started.
        using var first = await client.PostStreamAsync("/conversations/axmp-busy/completion", new { prompt = "take your time" }, Guard);
        using var second = await client.PostAsJsonAsync("/conversations/axmp-busy/completion", new { prompt = "me too" }, Guard);
        var body = await second.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Contains("still active", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("{}", "prompt")]
    [InlineData("{\"prompt\":\"   \"}", "prompt")]
    [InlineData("{\"prompt\":\"hi\",\"temperature\":\"hot\"}", "temperature")]
    [InlineData("{\"prompt\":\"hi\",\"temperature\":3}", "temperature")]
    [InlineData("{\"prompt\":\"hi\",\"stream_mode\":\"sideways\"}", "stream_mode")]
    [InlineData("not json", "body")]
    public async Task Bad_request_is_a_400_naming_the_field(string json, string field)
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostAsync(
            "/conversations/axmp-bad/completion", new StringContent(json, System.Text.Encoding.UTF8, "application/json"), Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.StartsWith(field + ":", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Demo_model_answers_a_calculation_with_tool_blocks()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostStreamAsync("/conversations/axmp-demo/completion", new { prompt = "what is 17 * 23?" }, Guard);
        var events = await AnthropicWire.ReadAllAsync(response, Guard);

        var blocks = events.Where(e => e.Type == "content_block_start").Select(e => e.Data.GetProperty("content_block")).ToList();
        Assert.Contains(blocks, b => b.GetProperty("type").GetString() == "tool_use" && b.GetProperty("name").GetString() == "calculate");
        Assert.Contains(blocks, b => b.GetProperty("type").GetString() == "tool_result" && b.GetProperty("content").GetString() == "391");
        Assert.Contains("391", events.Text());
        Assert.Equal("message_stop", events[^1].Type);
    }
}
