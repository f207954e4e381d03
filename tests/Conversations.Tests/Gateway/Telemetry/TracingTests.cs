using System.Collections.Concurrent;
using System.Diagnostics;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Telemetry;

/// <summary>
/// One trace from the HTTP request through the grain call into the run, its model calls and its tool call: what a
/// slow first token is explained with. Spans are seen by an in-process listener (as an exporter would see them).
/// </summary>
public sealed class TracingTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_request_the_grain_call_the_run_its_model_calls_and_its_tool_call_share_one_trace()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", """{"expression":"6*7"}""")),
            ScriptedResponse.Text("42."));
        var modelId = $"traces-{Guid.NewGuid():N}";
        // In either topology: in cluster mode the trace crosses from the gateway (an Orleans client) to the silo.
        await using var app = new GatewayApp(MetricsTests.ModelSettings(model, modelId));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        var traceId = ActivityTraceId.CreateRandom();
        var callerSpanId = ActivitySpanId.CreateRandom();
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("Conversations.", StringComparison.Ordinal)
                || source.Name.StartsWith("Microsoft.Orleans.", StringComparison.Ordinal)
                || source.Name is "Microsoft.AspNetCore" or "System.Net.Http",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity =>
            {
                if (activity.TraceId == traceId)
                {
                    spans.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        // The caller's trace: the request continues it (W3C traceparent).
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/threads/{threadId}/messages")
        {
            Content = JsonContent.Create(new { content = "6 * 7?", stream = true }),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{callerSpanId}-01");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", events[^1].Type);

        var all = spans.ToList();
        string Describe() => string.Join("\n", all.Select(s => $"{s.Source.Name} {s.Kind} '{s.DisplayName}' {s.SpanId} <- {s.ParentSpanId}"));
        // (The fake model server, in this process too, continues the trace with server spans of its own.)
        var httpRequest = Assert.Single(all, s => s.Source.Name == "Microsoft.AspNetCore" && s.Kind == ActivityKind.Server && s.ParentSpanId == callerSpanId);
        var grainCall = Assert.Single(all, s => s.Source.Name.StartsWith("Microsoft.Orleans.", StringComparison.Ordinal)
            && s.Kind == ActivityKind.Server && s.DisplayName.Contains("SendMessage", StringComparison.Ordinal));
        var run = Assert.Single(all, s => s.Source.Name == "Conversations.Grains" && s.DisplayName == "invoke_agent default");
        var modelCalls = all.Where(s => s.Source.Name == "Conversations.Grains" && s.DisplayName == $"chat {modelId}").ToList();
        var toolCall = Assert.Single(all, s => s.Source.Name == "Conversations.Grains" && s.DisplayName == "execute_tool calculate");

        // The run is a child of the grain call that started it, which descends from the request.
        Assert.True(IsAncestor(httpRequest, grainCall, all), Describe());
        Assert.Equal(grainCall.SpanId, run.ParentSpanId);
        Assert.Equal(2, modelCalls.Count);
        Assert.All(modelCalls, call => Assert.Equal(run.SpanId, call.ParentSpanId));
        Assert.Equal(run.SpanId, toolCall.ParentSpanId);
        // The model call's HTTP request to the model endpoint is inside the model call's span.
        Assert.Contains(all, s => s.Source.Name == "System.Net.Http" && modelCalls.Any(call => call.SpanId == s.ParentSpanId));
        Assert.Equal(modelId, modelCalls[0].GetTagItem("gen_ai.request.model"));
        Assert.Equal("calculate", toolCall.GetTagItem("gen_ai.tool.name"));
    }

    private static bool IsAncestor(Activity ancestor, Activity descendant, List<Activity> spans)
    {
        var byId = spans.ToDictionary(s => s.SpanId);
        for (var current = descendant; byId.TryGetValue(current.ParentSpanId, out var parent); current = parent)
        {
            if (parent == ancestor)
            {
                return true;
            }
        }

        return false;
    }
}
