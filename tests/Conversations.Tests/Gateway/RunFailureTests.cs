using System.Net;
using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway;

/// <summary>Runs that fail, and tools that fail: every subscriber is told why, and nothing stored is lost.</summary>
public sealed class RunFailureTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Model_failing_mid_stream_fails_the_run_for_every_subscriber_and_keeps_the_partial_text()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Earlier answer."));
        model.Enqueue(ScriptedResponse.Text("Partial ", "answer ", "that ", "never ", "ends").BreakAfter(3));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var first = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "first" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        // A watcher that joined before the run, and the client that sends the message and waits for the result.
        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "run.failed", Guard);
        using var sender = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "second" }, Guard);

        var seenByWatcher = await watched;
        var failed = seenByWatcher[^1];
        Assert.Equal("model_error", failed.Data.GetProperty("error").GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(failed.Data.GetProperty("error").GetProperty("message").GetString()));
        Assert.DoesNotContain("SECRET", failed.Data.GetRawText(), StringComparison.Ordinal);
        var partialEvent = Assert.Single(seenByWatcher, e => e.Type == "message.completed" && e.Str("status") == "incomplete");
        var sent = await sender.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal("failed", sent.GetProperty("status").GetString());
        Assert.Equal("model_error", sent.GetProperty("error").GetProperty("code").GetString());

        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["first", "Earlier answer.", "second"], messages.Take(3).Select(m => m.GetProperty("content").GetString()));
        var partial = messages[3];
        Assert.Equal("incomplete", partial.GetProperty("status").GetString());
        Assert.Equal(partialEvent.Str("content"), partial.GetProperty("content").GetString());
        Assert.StartsWith("Partial ", partial.GetProperty("content").GetString(), StringComparison.Ordinal);
        var run = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{failed.Str("runId")}", Guard);
        Assert.Equal("failed", run.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Model_endpoint_down_fails_the_run_with_a_reason()
    {
        var closedPort = FreeTcpPort();
        await using var app = new GatewayApp(new Dictionary<string, string?>
        {
            ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{closedPort}/v1",
            ["OPENAI_API_KEY"] = "sk-test-SECRET",
            ["OpenAI:MaxRetries"] = "0",
        });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hello", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var failed = events[^1];
        Assert.Equal("run.failed", failed.Type);
        Assert.Equal("model_unavailable", failed.Data.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("SECRET", failed.Data.GetRawText(), StringComparison.Ordinal);
        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        Assert.Equal(JsonValueKind.Undefined, thread.TryGetProperty("activeRunId", out var active) ? active.ValueKind : JsonValueKind.Undefined);
        Assert.Equal(1, thread.GetProperty("messageCount").GetInt32());
    }

    [Fact]
    public async Task Model_endpoint_down_is_model_unavailable_after_the_sdk_retries_and_the_log_says_why()
    {
        var closedPort = FreeTcpPort();
        var logs = new CapturedLogs();
        // The SDK's own retry policy (no MaxRetries override): its failures arrive gathered in an AggregateException.
        await using var app = new GatewayApp(
            new Dictionary<string, string?>
            {
                ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{closedPort}/v1",
                ["OPENAI_API_KEY"] = "sk-test-SECRET",
            },
            services => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hello", stream = true }, Guard);
        var failed = (await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard))[^1];

        Assert.Equal("run.failed", failed.Type);
        var error = failed.Data.GetProperty("error");
        Assert.Equal("model_unavailable", error.GetProperty("code").GetString());
        Assert.Equal("The model endpoint could not be reached: the connection was refused.", error.GetProperty("message").GetString());
        var cause = Assert.Single(logs.Lines, l => l.Category.EndsWith("OpenAiChatModel", StringComparison.Ordinal)).Message;
        Assert.Contains($"127.0.0.1:{closedPort}", cause, StringComparison.Ordinal);
        Assert.Contains("ConnectionRefused", cause, StringComparison.Ordinal);
        Assert.Contains(threadId, cause, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.Message.Contains("SECRET", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tool_that_times_out_yields_tool_call_failed_and_the_error_goes_back_to_the_model()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_slow", "slow", "{}"),
                new ScriptedToolCall("call_fast", "calculate", "{\"expression\":\"2+2\"}")),
            ScriptedResponse.Text("The slow tool timed out; 2+2 is 4."));
        await using var app = GatewayApp.WithModel(
            model,
            new Dictionary<string, string?> { ["Agents:default:ToolTimeout"] = "00:00:00.300", ["Agents:default:Tools:2"] = "slow" },
            services => services.AddSingleton<ITool, SlowTool>());
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "go", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var failedCall = Assert.Single(events, e => e.Type == "tool_call.failed");
        Assert.Equal("call_slow", failedCall.Str("callId"));
        Assert.Contains("timed out", failedCall.Str("error"), StringComparison.Ordinal);
        Assert.Equal("4", Assert.Single(events, e => e.Type == "tool_call.completed").Str("result"));
        var executed = Assert.Single(events, e => e.Type == "agent.status" && e.Str("status") == "tools_executed");
        Assert.Equal(1, executed.Data.GetProperty("details").GetProperty("failed").GetInt32());
        Assert.Equal("run.completed", events[^1].Type);
        var toolResult = model.Requests[1].Messages.Single(m => m!["tool_call_id"]?.GetValue<string>() == "call_slow");
        Assert.StartsWith("Error: ", toolResult!["content"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(SlowTool.Cancelled.Task.IsCompleted, "The timed-out tool was told to stop.");
    }

    [Fact]
    public async Task Unknown_tool_and_invalid_arguments_fail_the_call_not_the_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_x", "no_such_tool", "{}"),
                new ScriptedToolCall("call_y", "calculate", "{not json"),
                new ScriptedToolCall("call_z", "calculate", "{\"expression\":\"1/0\"}")),
            ScriptedResponse.Text("All three failed."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "go", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        var failures = events.Where(e => e.Type == "tool_call.failed").ToDictionary(e => e.Str("callId")!, e => e.Str("error")!);
        Assert.Contains("Unknown tool 'no_such_tool'", failures["call_x"], StringComparison.Ordinal);
        Assert.Contains("not valid JSON", failures["call_y"], StringComparison.Ordinal);
        Assert.Contains("Division by zero", failures["call_z"], StringComparison.Ordinal);
        Assert.Equal("run.completed", events[^1].Type);
    }

    private static int FreeTcpPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A tool that never finishes on its own.</summary>
    private sealed class SlowTool : ITool
    {
        public static TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ToolDefinition Definition { get; } = new("slow", "Never returns.", JsonDocument.Parse("{\"type\":\"object\",\"properties\":{}}").RootElement);

        public async ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            finally
            {
                Cancelled.TrySetResult();
            }

            return "unreachable";
        }
    }
}
