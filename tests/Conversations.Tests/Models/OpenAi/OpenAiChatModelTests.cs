using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Models.OpenAi;
using Conversations.Grains.Tools;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Models.OpenAi;

/// <summary><see cref="OpenAiChatModel"/> through the real OpenAI SDK against a real HTTP server.</summary>
public sealed class OpenAiChatModelTests
{
    private const string ApiKey = "sk-test-SECRET";
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);

    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Text_deltas_arrive_in_order_and_finish_stop_with_usage()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Hel", "lo, ", "world.").WithUsage(12, 3));

        var updates = await CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal(["Hel", "lo, ", "world."], updates.OfType<ModelTextDelta>().Select(delta => delta.Text));
        Assert.Empty(updates.OfType<ModelToolCallDelta>());
        var finished = Assert.IsType<ModelFinished>(updates[^1]);
        Assert.Single(updates.OfType<ModelFinished>());
        Assert.Equal("stop", finished.FinishReason);
        Assert.Equal(new Usage(12, 3, 15), finished.Usage);
    }

    [Fact]
    public async Task Streaming_request_asks_for_usage_and_carries_the_key()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("ok"));

        await CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken));

        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        Assert.Equal("fake-model", request.Model);
        Assert.Equal($"Bearer {ApiKey}", request.Authorization);
    }

    [Fact]
    public async Task Tool_call_argument_pieces_reassemble()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "get_weather", "{\"ci", "ty\": \"Pa", "ris\"}")));

        var updates = await CollectAsync(ModelFor(server).StreamAsync(Ask("Weather?"), TestToken));

        var deltas = updates.OfType<ModelToolCallDelta>().ToList();
        Assert.All(deltas, delta => Assert.Equal(0, delta.Index));
        Assert.Equal("call_1", deltas[0].Id);
        Assert.Equal("get_weather", deltas[0].Name);
        Assert.All(deltas.Skip(1), delta => Assert.Null(delta.Id));
        Assert.Equal("{\"city\": \"Paris\"}", string.Concat(deltas.Select(delta => delta.ArgumentsDelta)));
        Assert.Equal("tool_calls", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
        Assert.Empty(updates.OfType<ModelTextDelta>());
    }

    [Fact]
    public async Task Interleaved_parallel_calls_keep_their_index_id_and_name()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.ToolCalls(
            new ScriptedToolCall("call_a", "get_weather", "{\"city\":", "\"Paris\"}"),
            new ScriptedToolCall("call_b", "get_time", "{\"zone\":", "\"CET\"", "}")));

        var updates = await CollectAsync(ModelFor(server).StreamAsync(Ask("Weather and time?"), TestToken));

        var deltas = updates.OfType<ModelToolCallDelta>().ToList();
        // The pieces really were interleaved: call 1 got a piece before call 0 had all of its own.
        var lastOfFirst = deltas.FindLastIndex(delta => delta.Index == 0);
        Assert.Contains(deltas.Take(lastOfFirst), delta => delta.Index == 1);

        var calls = deltas.GroupBy(delta => delta.Index).ToDictionary(
            group => group.Key,
            group => (Id: group.Select(d => d.Id).Single(id => id is not null),
                      Name: group.Select(d => d.Name).Single(name => name is not null),
                      Arguments: string.Concat(group.Select(d => d.ArgumentsDelta))));
        Assert.Equal(("call_a", "get_weather", "{\"city\":\"Paris\"}"), calls[0]);
        Assert.Equal(("call_b", "get_time", "{\"zone\":\"CET\"}"), calls[1]);
    }

    [Fact]
    public async Task Text_before_tool_calls_is_kept()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Let me look.").WithToolCalls(new ScriptedToolCall("call_1", "lookup", "{}")));

        var updates = await CollectAsync(ModelFor(server).StreamAsync(Ask("?"), TestToken));

        Assert.IsType<ModelTextDelta>(updates[0]);
        Assert.Equal("Let me look.", ((ModelTextDelta)updates[0]).Text);
        Assert.Contains(updates, update => update is ModelToolCallDelta { Id: "call_1", Name: "lookup" });
        Assert.Equal("tool_calls", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
    }

    [Theory]
    [InlineData("length")]
    [InlineData("content_filter")]
    public async Task Finish_reason_is_reported(string finishReason)
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Once upon a").WithFinishReason(finishReason));

        var updates = await CollectAsync(ModelFor(server).StreamAsync(Ask("Tell a story"), TestToken));

        Assert.Equal(finishReason, Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
    }

    [Fact]
    public async Task Unknown_finish_reason_is_a_model_error_after_the_text()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Hi").WithFinishReason("eos"));

        var received = new List<ModelUpdate>();
        var error = await Assert.ThrowsAsync<ModelException>(() => DrainAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken), received));

        Assert.Equal("model_error", error.Code);
        Assert.Contains("finish_reason", error.Message, StringComparison.Ordinal);
        Assert.Equal("Hi", Assert.IsType<ModelTextDelta>(Assert.Single(received)).Text);
    }

    [Fact]
    public async Task Base_url_without_trailing_slash_and_no_key_work()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("ok"));
        var model = new OpenAiChatModel(new OpenAiModelOptions
        {
            BaseUrl = new Uri(server.BaseUrl.ToString().TrimEnd('/')),
            Model = "local-model",
            MaxRetries = 0,
        });

        var updates = await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal("ok", Assert.IsType<ModelTextDelta>(updates[0]).Text);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal("local-model", request.Model);
        Assert.Equal("Bearer unused", request.Authorization);
    }

    [Fact]
    public async Task Stream_without_a_finish_reason_is_a_model_error()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Chunks(
            """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"fake-model","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"""));

        var received = new List<ModelUpdate>();
        var error = await Assert.ThrowsAsync<ModelException>(() => DrainAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken), received));

        Assert.Equal("model_error", error.Code);
        Assert.Equal("The model stream ended without a finish reason.", error.Message);
        Assert.Equal("Hi", Assert.IsType<ModelTextDelta>(Assert.Single(received)).Text);
    }

    [Fact]
    public async Task Server_error_reports_status_and_message()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Error(500, "The engine is overloaded."));

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal("model_error", error.Code);
        Assert.Equal("The model endpoint answered 500: The engine is overloaded.", error.Message);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task Unauthorized_error_never_shows_the_key()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        // A careless proxy echoing the key; OpenAI itself masks it.
        server.Enqueue(ScriptedResponse.Error(401, $"Incorrect API key provided: {ApiKey}.", code: "invalid_api_key"));

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal("model_error", error.Code);
        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.Contains("Incorrect API key provided: ***", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Bearer", error.Message, StringComparison.Ordinal);
        Assert.Equal($"Bearer {ApiKey}", Assert.Single(server.Requests).Authorization);
    }

    [Fact]
    public async Task Unreachable_endpoint_is_model_unavailable()
    {
        var model = new OpenAiChatModel(new OpenAiModelOptions
        {
            ApiKey = ApiKey,
            BaseUrl = new Uri($"http://127.0.0.1:{UnusedPort()}/v1/"),
            Model = "fake-model",
            MaxRetries = 0,
        });

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi"), TestToken)))
            .WaitAsync(HangGuard, TestToken);

        Assert.Equal("model_unavailable", error.Code);
        Assert.Equal("The model endpoint could not be reached: the connection was refused.", error.Message);
    }

    [Fact]
    public async Task Unreachable_endpoint_with_the_default_retries_is_model_unavailable_and_the_log_names_host_and_cause()
    {
        var port = UnusedPort();
        var logger = new ListLogger<OpenAiChatModel>();
        // The SDK's default retry policy: three attempts, whose failures it gathers in an AggregateException.
        var model = new OpenAiChatModel(
            new OpenAiModelOptions { ApiKey = ApiKey, BaseUrl = new Uri($"http://127.0.0.1:{port}/v1/"), Model = "fake-model" },
            logger);

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi") with { ThreadId = "thread_1", RunId = "run_1" }, TestToken)))
            .WaitAsync(HangGuard, TestToken);

        Assert.Equal("model_unavailable", error.Code);
        Assert.Equal("The model endpoint could not be reached: the connection was refused.", error.Message);
        var (level, line, exception) = Assert.Single(logger.Entries);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, level);
        Assert.Contains($"127.0.0.1:{port}", line, StringComparison.Ordinal);
        Assert.Contains("ConnectionRefused", line, StringComparison.Ordinal);
        Assert.Contains("3 attempts", line, StringComparison.Ordinal);
        Assert.Contains("thread_1", line, StringComparison.Ordinal);
        Assert.Contains("run_1", line, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", line, StringComparison.Ordinal);
        Assert.Null(exception);
    }

    [Fact]
    public async Task A_503_on_every_attempt_is_model_unavailable_and_the_log_has_the_status_and_the_error()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(
            ScriptedResponse.Error(503, "The engine is overloaded."),
            ScriptedResponse.Error(503, "The engine is overloaded."),
            ScriptedResponse.Error(503, "The engine is overloaded."));
        var logger = new ListLogger<OpenAiChatModel>();
        var model = new OpenAiChatModel(new OpenAiModelOptions { ApiKey = ApiKey, BaseUrl = server.BaseUrl, Model = "fake-model" }, logger);

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi"), TestToken))).WaitAsync(HangGuard, TestToken);

        Assert.Equal("model_unavailable", error.Code);
        Assert.Equal("The model endpoint answered 503: The engine is overloaded.", error.Message);
        Assert.Equal(3, server.Requests.Count);
        var line = Assert.Single(logger.Entries).Message;
        Assert.Contains($"{server.BaseUrl.Authority}", line, StringComparison.Ordinal);
        Assert.Contains("HTTP status 503", line, StringComparison.Ordinal);
        Assert.Contains("The engine is overloaded.", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(429, "model_unavailable")]
    [InlineData(502, "model_unavailable")]
    [InlineData(504, "model_unavailable")]
    [InlineData(400, "model_error")]
    [InlineData(404, "model_error")]
    public async Task An_answer_is_model_error_and_a_status_that_means_try_later_is_model_unavailable(int status, string code)
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Error(status, "Nope."));

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal(code, error.Code);
        Assert.Equal($"The model endpoint answered {status}: Nope.", error.Message);
    }

    [Fact]
    public async Task A_401_is_logged_with_its_status_and_the_key_masked()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Error(401, $"Incorrect API key provided: {ApiKey}.", code: "invalid_api_key"));
        var logger = new ListLogger<OpenAiChatModel>();
        var model = new OpenAiChatModel(new OpenAiModelOptions { ApiKey = ApiKey, BaseUrl = server.BaseUrl, Model = "fake-model", MaxRetries = 0 }, logger);

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal("model_error", error.Code);
        var line = Assert.Single(logger.Entries).Message;
        Assert.Contains("HTTP status 401", line, StringComparison.Ordinal);
        Assert.Contains("Incorrect API key provided: ***", line, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Broken_stream_fails_after_the_deltas_that_arrived()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        // Chunk 1 is the role chunk, chunks 2 and 3 the first two deltas; then the connection is aborted.
        server.Enqueue(ScriptedResponse.Text("Hel", "lo", " world").BreakAfter(3));

        var received = new List<ModelUpdate>();
        var error = await Assert.ThrowsAsync<ModelException>(() => DrainAsync(ModelFor(server).StreamAsync(Ask("Hi"), TestToken), received))
            .WaitAsync(HangGuard, TestToken);

        Assert.True(error.Code == "model_error", $"Expected model_error, got {error}");
        Assert.StartsWith("The model stream broke off:", error.Message, StringComparison.Ordinal);
        Assert.Equal(["Hel", "lo"], received.OfType<ModelTextDelta>().Select(delta => delta.Text));
        Assert.DoesNotContain(received, update => update is ModelFinished);
    }

    [Fact]
    public async Task Silent_stream_times_out_as_a_model_error()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Hi", "there").HangAfter(2));
        var model = ModelFor(server, networkTimeout: TimeSpan.FromMilliseconds(500));

        var received = new List<ModelUpdate>();
        var error = await Assert.ThrowsAsync<ModelException>(() => DrainAsync(model.StreamAsync(Ask("Hi"), TestToken), received))
            .WaitAsync(HangGuard, TestToken);

        Assert.Equal("model_error", error.Code);
        Assert.StartsWith("The model stream broke off:", error.Message, StringComparison.Ordinal);
        Assert.Equal("Hi", Assert.IsType<ModelTextDelta>(Assert.Single(received)).Text);
    }

    [Fact]
    public async Task Cancelling_a_hung_stream_throws_OperationCanceledException()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Hang());
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestToken);

        var streaming = CollectAsync(ModelFor(server).StreamAsync(Ask("Hi"), cancellation.Token));
        var request = await server.WaitForRequestAsync(1, TestToken).WaitAsync(HangGuard, TestToken);
        await cancellation.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => streaming).WaitAsync(HangGuard, TestToken);
        Assert.True(await request.Aborted.WaitAsync(HangGuard, TestToken), "the server should see the connection go away");
    }

    [Fact]
    public async Task Cancelling_mid_stream_after_deltas_throws_OperationCanceledException()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("first", "never").HangAfter(2));
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestToken);

        var received = new List<ModelUpdate>();
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in ModelFor(server).StreamAsync(Ask("Hi"), cancellation.Token))
            {
                received.Add(update);
                await cancellation.CancelAsync();
            }
        }).WaitAsync(HangGuard, TestToken);

        Assert.Equal(cancellation.Token, error.CancellationToken);
        Assert.Equal("first", Assert.IsType<ModelTextDelta>(Assert.Single(received)).Text);
    }

    [Fact]
    public async Task Request_carries_instructions_tools_tool_calls_and_tool_results()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Sunny in Paris."));
        using var schema = JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""");
        var at = DateTimeOffset.UnixEpoch;
        var request = new ModelRequest(
            "You are terse.",
            [
                new ThreadMessage("msg_1", 1, MessageRoles.User, "Weather in Paris?", at),
                new ThreadMessage("msg_2", 2, MessageRoles.Assistant, "", at)
                {
                    ToolCalls = [new ToolCallInfo("call_1", "get_weather", """{"city":"Paris"}""")],
                },
                new ThreadMessage("msg_3", 3, MessageRoles.Tool, "sunny, 24°C", at) { ToolCallId = "call_1", Name = "get_weather" },
            ],
            [new ToolDefinition("get_weather", "Current weather of a city.", schema.RootElement.Clone())])
        {
            Temperature = 0.25,
            MaxTokens = 100,
        };

        await CollectAsync(ModelFor(server).StreamAsync(request, TestToken));

        var body = Assert.Single(server.Requests);
        var messages = body.Messages;
        Assert.Equal(4, messages.Count);
        Assert.Equal("system", Text(messages[0]!["role"]));
        Assert.Equal("You are terse.", ContentText(messages[0]!["content"]));
        Assert.Equal("user", Text(messages[1]!["role"]));
        Assert.Equal("Weather in Paris?", ContentText(messages[1]!["content"]));

        Assert.Equal("assistant", Text(messages[2]!["role"]));
        var call = messages[2]!["tool_calls"]![0]!;
        Assert.Equal("call_1", Text(call["id"]));
        Assert.Equal("function", Text(call["type"]));
        Assert.Equal("get_weather", Text(call["function"]!["name"]));
        Assert.Equal("""{"city":"Paris"}""", Text(call["function"]!["arguments"]));

        Assert.Equal("tool", Text(messages[3]!["role"]));
        Assert.Equal("call_1", Text(messages[3]!["tool_call_id"]));
        Assert.Equal("sunny, 24°C", ContentText(messages[3]!["content"]));

        var tool = Assert.Single(body.Tools)!;
        Assert.Equal("function", Text(tool["type"]));
        Assert.Equal("get_weather", Text(tool["function"]!["name"]));
        Assert.Equal("Current weather of a city.", Text(tool["function"]!["description"]));
        Assert.Equal("string", Text(tool["function"]!["parameters"]!["properties"]!["city"]!["type"]));

        Assert.Equal(0.25, body.Body!["temperature"]!.GetValue<double>(), 3);
        Assert.Equal(100, body.Body!["max_completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Default_retry_policy_retries_a_503_before_the_stream()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Error(503, "Try again."), ScriptedResponse.Text("Recovered."));
        var model = new OpenAiChatModel(new OpenAiModelOptions { ApiKey = ApiKey, BaseUrl = server.BaseUrl, Model = "fake-model" });

        var updates = await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken)).WaitAsync(HangGuard, TestToken);

        Assert.Equal("Recovered.", Assert.IsType<ModelTextDelta>(updates[0]).Text);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public void Options_never_print_the_key()
    {
        var options = new OpenAiModelOptions { ApiKey = ApiKey, Model = "fake-model" };

        Assert.DoesNotContain("SECRET", options.ToString(), StringComparison.Ordinal);
        Assert.Contains("fake-model", options.ToString(), StringComparison.Ordinal);
    }

    private static OpenAiChatModel ModelFor(FakeOpenAiServer server, TimeSpan? networkTimeout = null) => new(new OpenAiModelOptions
    {
        ApiKey = ApiKey,
        BaseUrl = server.BaseUrl,
        Model = "fake-model",
        MaxRetries = 0,
        NetworkTimeout = networkTimeout ?? TimeSpan.FromSeconds(30),
    });

    private static ModelRequest Ask(string text) =>
        new(null, [new ThreadMessage("msg_1", 1, MessageRoles.User, text, DateTimeOffset.UnixEpoch)], []);

    private static async Task<List<ModelUpdate>> CollectAsync(IAsyncEnumerable<ModelUpdate> updates)
    {
        var list = new List<ModelUpdate>();
        await DrainAsync(updates, list);
        return list;
    }

    private static async Task DrainAsync(IAsyncEnumerable<ModelUpdate> updates, List<ModelUpdate> into)
    {
        await foreach (var update in updates)
        {
            into.Add(update);
        }
    }

    private static string? Text(System.Text.Json.Nodes.JsonNode? node) => node?.GetValue<string>();

    /// <summary>A message's content, whether the SDK sent it as a string or as text parts.</summary>
    private static string? ContentText(System.Text.Json.Nodes.JsonNode? content) => content switch
    {
        System.Text.Json.Nodes.JsonArray parts => string.Concat(parts.Select(part => part!["text"]!.GetValue<string>())),
        null => null,
        _ => content.GetValue<string>(),
    };

    private static int UnusedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
