using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.OpenAi;

/// <summary><c>POST /v1/chat/completions</c> read off the wire as the seeds' clients read it.</summary>
public sealed class ChatCompletionsTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Streams_text_as_chunks_with_a_role_chunk_usage_and_done()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello", " there").WithUsage(5, 2));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions",
            new { model = "fake-model", messages = new[] { new { role = "user", content = "Hello!" } }, stream = true, stream_options = new { include_usage = true } },
            cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var threadId = response.Headers.GetValues("X-Thread-Id").Single();
        Assert.StartsWith("thread_", threadId);
        Assert.Equal("[DONE]", data[^1]);
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.Str("object")));
        Assert.All(chunks, c => Assert.Equal(threadId, c.Str("thread_id")));
        Assert.Single(chunks.Select(c => c.Str("id")).Distinct());
        Assert.StartsWith("chatcmpl-", chunks[0].Str("id"));
        Assert.All(chunks, c => Assert.Equal("fake-model", c.Str("model")));

        Assert.Equal("assistant", chunks[0].Delta().Str("role"));
        Assert.Equal("", chunks[0].Delta().Str("content"));
        Assert.Equal("Hello there", chunks.Text());
        Assert.DoesNotContain(chunks.Where(c => c.HasChoice()), c => c.Delta().Str("role") == "system");
        Assert.All(chunks.Where(c => c.HasChoice()), c => Assert.Equal(JsonValueKind.Null, c.Choice().GetProperty("logprobs").ValueKind));

        var finish = Assert.Single(chunks, c => c.HasChoice() && c.Choice().GetProperty("finish_reason").ValueKind != JsonValueKind.Null);
        Assert.Equal("stop", finish.Choice().Str("finish_reason"));
        Assert.Equal(7, finish.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        var usageChunk = chunks[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(5, usageChunk.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(2, usageChunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Frames_are_data_lines_only_in_openai_key_order()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hi"));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "x" } }, stream = true }, cancellationToken: Guard);
        var body = await response.Content.ReadAsStringAsync(Guard);

        // No event:/id: lines: every frame is "data: …" and a blank line, like OpenAI's.
        var frames = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Where(f => !f.StartsWith(':')).ToList();
        Assert.All(frames, f => Assert.StartsWith("data: ", f));
        Assert.Equal("data: [DONE]", frames[^1]);
        Assert.Matches("^data: \\{\"id\":\"chatcmpl-[^\"]+\",\"object\":\"chat.completion.chunk\",\"created\":\\d+,\"model\":\"fake-model\",\"system_fingerprint\":\"[^\"]+\",\"choices\":\\[\\{\"index\":0,\"delta\":\\{\"content\":\"Hi\"\\},\"logprobs\":null,\"finish_reason\":null\\}\\],\"thread_id\":\"[^\"]+\"\\}$", frames[1]);
    }

    [Fact]
    public async Task A_tool_call_streams_as_tool_call_deltas_then_the_answer_with_one_stop()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_calc", "calculate", "{\"expression\":", "\"17 * 23\"}")),
            ScriptedResponse.Text("17 × 23 = ", "391."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "17*23?" } }, stream = true }, cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        var calls = chunks.ToolCallDeltas();
        Assert.Equal(3, calls.Count);
        var first = calls[0];
        Assert.Equal(0, first.GetProperty("index").GetInt32());
        Assert.Equal("call_calc", first.Str("id"));
        Assert.Equal("function", first.Str("type"));
        Assert.Equal("calculate", first.GetProperty("function").Str("name"));
        Assert.Equal("", first.GetProperty("function").Str("arguments"));
        Assert.All(calls.Skip(1), c =>
        {
            Assert.False(c.TryGetProperty("id", out _));
            Assert.False(c.TryGetProperty("type", out _));
            Assert.False(c.GetProperty("function").TryGetProperty("name", out _));
            Assert.Equal(0, c.GetProperty("index").GetInt32());
        });
        Assert.Equal("{\"expression\":\"17 * 23\"}", string.Concat(calls.Select(c => c.GetProperty("function").Str("arguments"))));
        Assert.Equal("17 × 23 = 391.", chunks.Text());
        var finishes = chunks.Where(c => c.HasChoice() && c.Choice().GetProperty("finish_reason").ValueKind != JsonValueKind.Null).ToList();
        Assert.Equal("stop", Assert.Single(finishes).Choice().Str("finish_reason"));
        Assert.Equal("[DONE]", data[^1]);

        // The real calculate tool ran on the server and its result went back to the model.
        var toolMessage = model.Requests[1].Messages.Single(m => m!["role"]!.GetValue<string>() == "tool");
        Assert.Equal("391", toolMessage!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Tool_calls_of_a_later_turn_get_indexes_after_the_earlier_ones()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":\"1+1\"}")),
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_2", "calculate", "{\"expression\":\"2+2\"}")),
            ScriptedResponse.Text("2 and 4."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "go" } }, stream = true }, cancellationToken: Guard);
        var chunks = (await response.ReadDataLinesAsync(Guard)).Chunks();

        var headers = chunks.ToolCallDeltas().Where(c => c.TryGetProperty("id", out _)).ToList();
        Assert.Equal(["call_1", "call_2"], headers.Select(h => h.Str("id")));
        Assert.Equal([0, 1], headers.Select(h => h.GetProperty("index").GetInt32()));
        var argumentIndexes = chunks.ToolCallDeltas().Where(c => !c.TryGetProperty("id", out _)).Select(c => c.GetProperty("index").GetInt32());
        Assert.Equal([0, 1], argumentIndexes);
        Assert.Equal("2 and 4.", chunks.Text());
    }

    [Fact]
    public async Task A_model_failure_mid_stream_ends_with_an_openai_error_chunk_and_no_done()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Partial ", "answer", " never finished").BreakAfter(3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "go" } }, stream = true }, cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("[DONE]", data);
        Assert.Equal("Partial answer", chunks.Text());
        var error = chunks[^1].GetProperty("error");
        Assert.Equal("server_error", error.Str("type"));
        Assert.Equal("model_error", error.Str("code"));
        Assert.False(string.IsNullOrEmpty(error.Str("message")));
        Assert.DoesNotContain(chunks, c => c.HasChoice() && c.Choice().GetProperty("finish_reason").ValueKind != JsonValueKind.Null);

        // The partial text is kept by the thread.
        var threadId = response.Headers.GetValues("X-Thread-Id").Single();
        var messages = await app.Client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard);
        var assistant = messages.GetProperty("data").EnumerateArray().Single(m => m.Str("role") == "assistant");
        Assert.Equal("Partial answer", assistant.Str("content"));
        Assert.Equal("incomplete", assistant.Str("status"));
    }

    [Fact]
    public async Task Continuing_a_thread_by_header_sends_only_the_last_user_message_and_keeps_history()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Nice to meet you, Ada."), ScriptedResponse.Text("You are Ada."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var first = await client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "I am Ada." } }, stream = true }, cancellationToken: Guard);
        var threadId = first.Headers.GetValues("X-Thread-Id").Single();
        Assert.Equal("Nice to meet you, Ada.", (await first.ReadDataLinesAsync(Guard)).Chunks().Text());

        // An OpenAI client resends the whole conversation; the thread already owns it, so only the last turn counts.
        using var second = await client.PostJsonAsync(
            "/v1/chat/completions",
            new
            {
                messages = new[]
                {
                    new { role = "user", content = "I am Ada." },
                    new { role = "assistant", content = "Nice to meet you, Ada." },
                    new { role = "user", content = "Who am I?" },
                },
                stream = true,
            },
            new Dictionary<string, string> { ["X-Thread-Id"] = threadId },
            Guard);
        var chunks = (await second.ReadDataLinesAsync(Guard)).Chunks();

        Assert.Equal(threadId, second.Headers.GetValues("X-Thread-Id").Single());
        Assert.All(chunks, c => Assert.Equal(threadId, c.Str("thread_id")));
        Assert.Equal("You are Ada.", chunks.Text());
        var sent = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() != "system").Select(m => (m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
        Assert.Equal([("user", "I am Ada."), ("assistant", "Nice to meet you, Ada."), ("user", "Who am I?")], sent);
    }

    [Fact]
    public async Task A_new_thread_takes_the_earlier_messages_as_its_history_and_thread_id_names_it()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Blue."));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions",
            new
            {
                thread_id = "my-thread-1",
                messages = new object[]
                {
                    new { role = "system", content = "Answer in one word." },
                    new { role = "user", content = new[] { new { type = "text", text = "Sky colour?" } } },
                    new { role = "assistant", content = "Blue." },
                    new { role = "user", content = new[] { new { type = "text", text = "And" }, new { type = "text", text = "again?" } } },
                },
                stream = false,
            },
            cancellationToken: Guard);
        var completion = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("my-thread-1", response.Headers.GetValues("X-Thread-Id").Single());
        Assert.Equal("my-thread-1", completion.Str("thread_id"));
        var sent = model.Requests[0].Messages.Select(m => (m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
        Assert.Equal(
            [("user", "Sky colour?"), ("assistant", "Blue."), ("user", "And\nagain?")],
            sent.Where(m => m.Item1 != "system"));
        Assert.Contains(("system", "Answer in one word."), sent);
    }

    [Fact]
    public async Task Non_streaming_answer_is_a_chat_completion_with_the_run_text_tool_calls_and_usage()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_9", "calculate", "{\"expression\":\"17 * 23\"}")).WithUsage(10, 5),
            ScriptedResponse.Text("It is ", "391.").WithUsage(20, 3));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { model = "fake-model", messages = new[] { new { role = "user", content = "17*23?" } } }, cancellationToken: Guard);
        var completion = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("chat.completion", completion.Str("object"));
        Assert.StartsWith("chatcmpl-", completion.Str("id"));
        Assert.Equal(response.Headers.GetValues("X-Thread-Id").Single(), completion.Str("thread_id"));
        var choice = completion.GetProperty("choices")[0];
        Assert.Equal("stop", choice.Str("finish_reason"));
        Assert.Equal("assistant", choice.GetProperty("message").Str("role"));
        Assert.Equal("It is 391.", choice.GetProperty("message").Str("content"));
        var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("call_9", call.Str("id"));
        Assert.Equal("function", call.Str("type"));
        Assert.Equal("calculate", call.GetProperty("function").Str("name"));
        Assert.Equal("{\"expression\":\"17 * 23\"}", call.GetProperty("function").Str("arguments"));
        Assert.Equal(38, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Non_streaming_run_failure_is_a_502_in_openai_error_shape_when_the_model_answered_an_error()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Error(500, "upstream exploded"));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "hi" } } }, cancellationToken: Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.True(response.Headers.Contains("X-Thread-Id"));
        Assert.Equal("server_error", body.GetProperty("error").Str("type"));
        Assert.Equal("model_error", body.GetProperty("error").Str("code"));
    }

    [Theory]
    [InlineData("{\"messages\":[]}", "messages")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}", "messages")]
    [InlineData("{\"messages\":[{\"role\":\"wizard\",\"content\":\"a\"}]}", "messages[0].role")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", "messages[0].content[0]")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":7}", "temperature")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":0}", "max_tokens")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"thread_id\":\"bad id!\"}", "thread_id")]
    [InlineData("{\"messages\":\"nope\"}", "messages")]
    public async Task Bad_requests_are_400_in_openai_error_shape_naming_the_field(string json, string param)
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostAsync("/v1/chat/completions", new StringContent(json, System.Text.Encoding.UTF8, "application/json"), Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request_error", body.GetProperty("error").Str("type"));
        Assert.Equal(param, body.GetProperty("error").Str("param"));
        Assert.False(string.IsNullOrEmpty(body.GetProperty("error").Str("message")));
    }

    [Fact]
    public async Task Unknown_agent_is_a_404_and_leaves_no_thread()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions",
            new { agent = "nobody", thread_id = "t-unknown-agent", messages = new[] { new { role = "user", content = "hi" } } },
            cancellationToken: Guard);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("agent", body.GetProperty("error").Str("param"));
        Assert.Equal("agent_not_found", body.GetProperty("error").Str("code"));
        using var thread = await app.Client.GetAsync("/threads/t-unknown-agent", Guard);
        Assert.Equal(HttpStatusCode.NotFound, thread.StatusCode);
    }

    [Fact]
    public async Task A_second_message_while_the_run_is_active_is_a_409_in_openai_error_shape()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var first = await client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "slow" } }, stream = true }, cancellationToken: Guard);
        var threadId = first.Headers.GetValues("X-Thread-Id").Single();
        await model.WaitForRequestAsync(1, Guard);

        using var second = await client.PostJsonAsync(
            "/v1/chat/completions", new { thread_id = threadId, messages = new[] { new { role = "user", content = "again" } } }, cancellationToken: Guard);
        var body = await second.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Equal(threadId, second.Headers.GetValues("X-Thread-Id").Single());
        Assert.Equal("run_active", body.GetProperty("error").Str("code"));
        Assert.Equal("invalid_request_error", body.GetProperty("error").Str("type"));
    }

    [Fact]
    public async Task A_model_naming_an_agent_runs_that_agent_and_models_lists_it()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Arr."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Agents:pirate:Instructions"] = "Talk like a pirate." });

        var models = await app.Client.GetFromJsonAsync<JsonElement>("/v1/models", Guard);
        Assert.Equal("list", models.Str("object"));
        var ids = models.GetProperty("data").EnumerateArray().Select(m => m.Str("id")).ToList();
        Assert.Contains("fake-model", ids);
        Assert.Contains("pirate", ids);
        Assert.All(models.GetProperty("data").EnumerateArray(), m => Assert.Equal("model", m.Str("object")));

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { model = "pirate", messages = new[] { new { role = "user", content = "hi" } } }, cancellationToken: Guard);
        var completion = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal("Arr.", completion.GetProperty("choices")[0].GetProperty("message").Str("content"));
        Assert.Equal("fake-model", completion.Str("model"));
        var system = model.Requests[0].Messages.First(m => m!["role"]!.GetValue<string>() == "system");
        Assert.Contains("pirate", system!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_run_cut_off_by_the_token_limit_finishes_length()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Once upon a").WithFinishReason("length"));
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "story" } }, stream = true, max_tokens = 3 }, cancellationToken: Guard);
        var chunks = (await response.ReadDataLinesAsync(Guard)).Chunks();

        var finish = Assert.Single(chunks, c => c.HasChoice() && c.Choice().GetProperty("finish_reason").ValueKind != JsonValueKind.Null);
        Assert.Equal("length", finish.Choice().Str("finish_reason"));
        Assert.Equal(3, model.Requests[0].Body!["max_completion_tokens"]?.GetValue<int>() ?? model.Requests[0].Body!["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_cancelled_run_ends_the_stream_with_a_run_cancelled_error_chunk()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var response = await client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "slow" } }, stream = true }, cancellationToken: Guard);
        var threadId = response.Headers.GetValues("X-Thread-Id").Single();
        await model.WaitForRequestAsync(1, Guard);
        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        using var cancel = await client.PostAsync($"/threads/{threadId}/runs/{thread.Str("activeRunId")}/cancel", null, Guard);
        var data = await response.ReadDataLinesAsync(Guard);

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.DoesNotContain("[DONE]", data);
        Assert.Equal("run_cancelled", data.Chunks()[^1].GetProperty("error").Str("code"));
        Assert.EndsWith(thread.Str("activeRunId")!["run_".Length..], data.Chunks()[0].Str("id"));
    }
}
