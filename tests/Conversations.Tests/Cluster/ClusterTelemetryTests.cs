using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Conversations.Tests.Gateway.Telemetry;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster;

/// <summary>
/// <c>/metrics</c> of a silo process and of a gateway process of one cluster: each node shows what it does — runs,
/// model calls and tool calls on the silo that ran them, relayed events on the gateway.
/// </summary>
public sealed class ClusterTelemetryTests : PostgresTestBase
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_silo_shows_the_runs_it_ran_and_the_gateway_the_events_it_relayed()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", """{"expression":"17*23"}""")).WithUsage(20, 5),
            ScriptedResponse.Text("391.").WithUsage(30, 2));
        var modelId = $"cluster-{Guid.NewGuid():N}";
        var settings = MetricsTests.ModelSettings(model, modelId).ToDictionary(p => p.Key.Replace(":", "__", StringComparison.Ordinal), p => p.Value);
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 1, settings, Guard);
        var gateway = cluster.Gateways[0].Client;
        var threadId = await gateway.CreateThreadAsync(cancellationToken: Guard);

        using var response = await gateway.PostStreamAsync($"/threads/{threadId}/messages", new { content = "17 * 23?", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", events[^1].Type);

        var silo = await cluster.Silos[0].Client.ScrapeAsync(Guard);
        (string, string) Model = ("gen_ai_request_model", modelId);
        Assert.Equal(1, silo.Sum("conversations_runs_started_total", ("gen_ai_agent_name", "default"), Model));
        Assert.Equal(1, silo.Sum("conversations_runs_ended_total", Model, ("conversations_run_status", "completed")));
        Assert.Equal(1, silo.Sum("conversations_run_time_to_first_token_seconds_count", Model));
        Assert.Equal(50, silo.Sum("gen_ai_client_token_usage_sum", Model, ("gen_ai_token_type", "input")));
        Assert.Equal(1, silo.Sum("conversations_tool_calls_total", ("gen_ai_tool_name", "calculate"), ("conversations_tool_outcome", "success")));
        Assert.Equal(1, silo.Sum("orleans_grains", ("grain_type", "thread")));
        Assert.Contains(silo, s => s.Name.StartsWith("orleans_", StringComparison.Ordinal) && s.Has("otel_scope_name", "Microsoft.Orleans"));

        var relayed = await gateway.ScrapeAsync(Guard);
        Assert.Equal(events.Count, relayed.Sum("conversations_gateway_events_relayed_total", ("conversations_stream_format", "native")));
        // The gateway runs no grains: it has none of their metrics, but Orleans' client meter and its HTTP requests.
        Assert.DoesNotContain(relayed, s => s.Name.StartsWith("conversations_runs_", StringComparison.Ordinal));
        Assert.Contains(relayed, s => s.Name.StartsWith("orleans_", StringComparison.Ordinal));
        Assert.True(relayed.Sum("http_server_request_duration_seconds_count", ("http_route", "/threads/{threadId}/messages")) >= 1);
    }
}
