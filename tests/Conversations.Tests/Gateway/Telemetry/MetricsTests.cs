using System.Diagnostics.Metrics;
using System.Net;
using Conversations.Tests.Compat.StreamingChat;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway.Telemetry;

/// <summary>
/// <c>GET /metrics</c> of an embedded gateway (which hosts the silo: it shows the grains' metrics and the gateway's),
/// read over real HTTP after real runs. Each test's model has an id of its own, so the samples it labels are its own.
/// </summary>
public sealed class MetricsTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    internal static Dictionary<string, string?> ModelSettings(FakeOpenAiServer model, string modelId) => new()
    {
        ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
        ["OPENAI_API_KEY"] = "sk-test-SECRET",
        ["OPENAI_MODEL"] = modelId,
        ["OpenAI:MaxRetries"] = "0",
    };

    [Fact]
    public async Task A_run_with_a_tool_call_shows_runs_first_token_tokens_tool_calls_relayed_events_and_orleans_metrics()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", """{"expression":"17*23"}""")).WithUsage(30, 12),
            ScriptedResponse.Text("It is ", "391.").WithUsage(50, 4),
            ScriptedResponse.Text("Hello ", "there.").WithUsage(7, 2));
        var modelId = $"metrics-{Guid.NewGuid():N}";
        await using var app = GatewayApp.Embedded(ModelSettings(model, modelId));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "17 * 23?", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", events[^1].Type);
        // The same thread through the OpenAI dialect: its chunks count as relayed in the openai format.
        using var chat = await client.PostAsJsonAsync("/v1/chat/completions", new { model = modelId, stream = true, messages = new[] { new { role = "user", content = "hi" } } }, Guard);
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        var chunks = (await chat.Content.ReadAsStringAsync(Guard)).Split('\n').Count(l => l.StartsWith("data:", StringComparison.Ordinal));

        var metrics = await client.ScrapeAsync(Guard);

        (string, string) Model = ("gen_ai_request_model", modelId);
        (string, string) Agent = ("gen_ai_agent_name", "default");
        Assert.Equal(2, metrics.Sum("conversations_runs_started_total", Agent, Model));
        Assert.Equal(2, metrics.Sum("conversations_runs_ended_total", Agent, Model, ("conversations_run_status", "completed"), ("conversations_run_reason", "stop")));
        Assert.Equal(2, metrics.Sum("conversations_run_time_to_first_token_seconds_count", Agent, Model));
        Assert.Equal(3, metrics.Sum("gen_ai_client_operation_duration_seconds_count", Model));
        Assert.Equal(30 + 50 + 7, metrics.Sum("gen_ai_client_token_usage_sum", Model, ("gen_ai_token_type", "input")));
        Assert.Equal(12 + 4 + 2, metrics.Sum("gen_ai_client_token_usage_sum", Model, ("gen_ai_token_type", "output")));
        Assert.Equal(0, metrics.Sum("conversations_model_errors_total", Model));
        // Tools and streams carry no model label: other tests' runs may count too.
        Assert.True(metrics.Sum("conversations_tool_calls_total", ("gen_ai_tool_name", "calculate"), ("conversations_tool_outcome", "success")) >= 1);
        Assert.True(metrics.Sum("conversations_tool_duration_seconds_count", ("gen_ai_tool_name", "calculate")) >= 1);
        Assert.True(metrics.Sum("conversations_gateway_events_relayed_total", ("conversations_stream_format", "native")) >= events.Count);
        Assert.True(metrics.Sum("conversations_gateway_events_relayed_total", ("conversations_stream_format", "openai")) >= chunks);
        Assert.Contains(metrics, s => s.Name == "conversations_runs_active");
        Assert.True(metrics.Sum("orleans_grains", ("grain_type", "thread")) >= 1);
        // Orleans' own meter, ASP.NET Core's, and HttpClient's (the model calls).
        Assert.Contains(metrics, s => s.Name.StartsWith("orleans_", StringComparison.Ordinal) && s.Has("otel_scope_name", "Microsoft.Orleans"));
        Assert.True(metrics.Sum("http_server_request_duration_seconds_count", ("http_route", "/threads/{threadId}/messages")) >= 1);
        Assert.True(metrics.Sum("http_client_request_duration_seconds_count", ("server_address", model.BaseUrl.Host), ("server_port", model.BaseUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))) >= 3);
    }

    [Fact]
    public async Task A_model_call_that_fails_counts_as_a_model_error_of_its_type_and_a_failed_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Error(500, "The model broke."), ScriptedResponse.Error(503, "Overloaded."));
        var modelId = $"errors-{Guid.NewGuid():N}";
        await using var app = GatewayApp.Embedded(ModelSettings(model, modelId));
        var client = app.Client;

        foreach (var expected in new[] { "model_error", "model_unavailable" })
        {
            var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
            using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hello", stream = true }, Guard);
            var failed = (await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard))[^1];
            Assert.Equal(expected, failed.Data.GetProperty("error").GetProperty("code").GetString());
        }

        var metrics = await client.ScrapeAsync(Guard);

        (string, string) Model = ("gen_ai_request_model", modelId);
        Assert.Equal(1, metrics.Sum("conversations_model_errors_total", Model, ("error_type", "model_error")));
        Assert.Equal(1, metrics.Sum("conversations_model_errors_total", Model, ("error_type", "model_unavailable")));
        Assert.Equal(1, metrics.Sum("gen_ai_client_operation_duration_seconds_count", Model, ("error_type", "model_error")));
        Assert.Equal(1, metrics.Sum("conversations_runs_ended_total", Model, ("conversations_run_status", "failed"), ("conversations_run_reason", "model_error")));
        Assert.Equal(1, metrics.Sum("conversations_runs_ended_total", Model, ("conversations_run_status", "failed"), ("conversations_run_reason", "model_unavailable")));
        Assert.Equal(0, metrics.Sum("conversations_run_time_to_first_token_seconds_count", Model));
        Assert.Equal(0, metrics.Sum("gen_ai_client_token_usage_count", Model));
    }

    [Fact]
    public async Task Messages_sent_over_the_WebSocket_count_as_events_relayed_in_the_chat_format()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Hello ", "there."));
        await using var app = GatewayApp.Embedded(ModelSettings(model, $"ws-{Guid.NewGuid():N}"));
        var client = app.Client;
        // This app's own instruments only: the meters its container's factory made.
        var scope = app.Services.GetRequiredService<IMeterFactory>();
        var relayed = new System.Collections.Concurrent.ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == scope && instrument.Name == "conversations.gateway.events.relayed")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "conversations.stream.format")
                {
                    relayed.AddOrUpdate((string)tag.Value!, value, (_, sum) => sum + value);
                }
            }
        });
        listener.Start();

        using var socket = await app.ConnectWebSocketAsync(Guard);
        await socket.SendChatAsync("hello?", Guard);
        var messages = await socket.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);

        Assert.Equal(messages.Count, relayed.GetValueOrDefault("chat"));
        Assert.Equal(0, relayed.GetValueOrDefault("native"));
    }

    [Fact]
    public async Task The_gateway_counts_its_live_subscribers_and_feeds_and_how_far_behind_they_read()
    {
        await using var app = GatewayApp.Embedded();
        var client = app.Client;
        var scope = app.Services.GetRequiredService<IMeterFactory>();
        var latest = new System.Collections.Concurrent.ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == scope && instrument.Meter.Name == "Conversations.Gateway")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
            latest.AddOrUpdate(instrument.Name, value, (_, before) => instrument is Histogram<long> ? before + 1 : value));
        listener.Start();
        long Observed(string name)
        {
            listener.RecordObservableInstruments();
            return latest.GetValueOrDefault(name);
        }

        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        var first = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        var second = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        Assert.Equal(2, await TestTimeouts.EventuallyAsync(() => Task.FromResult(Observed("conversations.gateway.subscribers")), n => n == 2));
        Assert.Equal(1, Observed("conversations.gateway.feeds"));

        using (var sender = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "what is 17 * 23?", stream = true }, Guard))
        {
            await sender.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        }

        // Each live event handed to a subscriber is one lag measurement (events it had still to read).
        Assert.True(latest.GetValueOrDefault("conversations.gateway.subscriber.lag") >= 2);
        first.Dispose();
        second.Dispose();
        Assert.Equal(0, await TestTimeouts.EventuallyAsync(() => Task.FromResult(Observed("conversations.gateway.subscribers")), n => n == 0));
        Assert.Equal(0, Observed("conversations.gateway.feeds"));
    }
}
