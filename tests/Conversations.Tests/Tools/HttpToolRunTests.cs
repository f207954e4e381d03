using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Tools;

/// <summary>
/// Runs through the gateway (the scripted fake model) that call an HTTP tool declared in configuration, against a real
/// HTTP service on loopback; and arguments that fail the tool's schema, whose error reaches the model.
/// </summary>
public sealed class HttpToolRunTests
{
    private const string Secret = "wk-run-9876543210-SECRET";

    private static CancellationToken Guard => TestTimeouts.Guard();

    private static Dictionary<string, string?> WeatherTool(FakeHttpService service) => new()
    {
        ["Tools:Http:get_weather:Description"] = "Current weather in a city.",
        ["Tools:Http:get_weather:Url"] = service.BaseUrl + "/weather/{city}",
        ["Tools:Http:get_weather:Headers:Authorization"] = "Bearer ${secret:WEATHER_KEY}",
        ["Tools:Http:get_weather:Parameters"] = """
            {"type":"object","properties":{"city":{"type":"string"},"units":{"enum":["metric","imperial"]}},"required":["city"],"additionalProperties":false}
            """,
        ["WEATHER_KEY"] = Secret,
        // The default agent's tools are calculate and get_time (appsettings.json); this one joins them.
        ["Agents:default:Tools:2"] = "get_weather",
    };

    private static Action<IServiceCollection> Capture(CapturedLogs logs) => services =>
        services.AddLogging(logging => logging.AddProvider(logs).AddFilter<CapturedLogs>("System.Net.Http", LogLevel.Trace));

    [Fact]
    public async Task The_model_calls_an_http_tool_and_reads_its_answer_and_the_secret_reaches_only_the_service()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_w", "get_weather", "{\"city\":", "\"Paris\",\"units\":\"metric\"}")),
            ScriptedResponse.Text("It is sunny in Paris."));
        var logs = new CapturedLogs();
        await using var app = GatewayApp.WithModel(model, WeatherTool(service), Capture(logs));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "weather in Paris?", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal("run.completed", events[^1].Type);
        Assert.Contains(model.Requests[0].Tools, t => t!["function"]!["name"]!.GetValue<string>() == "get_weather");
        var request = Assert.Single(service.Requests);
        Assert.Equal("/weather/Paris", request.Path);
        Assert.Equal("?units=metric", request.Query);
        Assert.Equal("Bearer " + Secret, request.Headers["Authorization"]);

        var completed = Assert.Single(events, e => e.Type == "tool_call.completed");
        using var result = JsonDocument.Parse(completed.Str("result")!);
        Assert.Equal("Paris", result.RootElement.GetProperty("city").GetString());
        Assert.Equal("Bearer ***", result.RootElement.GetProperty("echo").GetString());
        var toolMessage = model.Requests[1].Messages.Single(m => m!["role"]!.GetValue<string>() == "tool");
        Assert.Equal(completed.Str("result"), toolMessage!["content"]!.GetValue<string>());

        // The service echoed the credential; nothing the run published, stored, sent the model or logged holds it.
        var stored = await client.GetStringAsync($"/threads/{threadId}/messages", Guard);
        Assert.All(events, e => Assert.DoesNotContain(Secret, e.Data.GetRawText(), StringComparison.Ordinal));
        Assert.DoesNotContain(Secret, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, model.Requests[1].Body!.ToJsonString(), StringComparison.Ordinal);
        Assert.Contains(logs.Lines, l => l.Category.StartsWith("System.Net.Http.HttpClient.Conversations.Tools.Http", StringComparison.Ordinal));
        Assert.DoesNotContain(Secret, logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Arguments_that_fail_the_schema_reach_the_model_as_the_error_and_the_service_is_not_called()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_bad", "get_weather", "{\"town\":\"Paris\"}"),
                new ScriptedToolCall("call_calc", "calculate", "{\"expression\":42}")),
            ScriptedResponse.Text("Let me fix that."));
        await using var app = GatewayApp.WithModel(model, WeatherTool(service));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "weather?", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal("run.completed", events[^1].Type);
        Assert.Empty(service.Requests);
        Assert.DoesNotContain(events, e => e.Type == "tool_call.completed");
        var failures = events.Where(e => e.Type == "tool_call.failed").ToDictionary(e => e.Str("callId")!, e => e.Str("error")!);
        Assert.StartsWith("Invalid arguments for 'get_weather': ", failures["call_bad"], StringComparison.Ordinal);
        Assert.Contains("[\"city\"]", failures["call_bad"], StringComparison.Ordinal);
        Assert.Contains("'town': not allowed", failures["call_bad"], StringComparison.Ordinal);
        // The built-in's own check ("must be a string") never ran: the schema's did.
        Assert.Contains("'expression': Value is \"integer\" but should be \"string\"", failures["call_calc"], StringComparison.Ordinal);

        var toolMessages = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() == "tool")
            .ToDictionary(m => m!["tool_call_id"]!.GetValue<string>(), m => m!["content"]!.GetValue<string>());
        Assert.Equal("Error: " + failures["call_bad"], toolMessages["call_bad"]);
        Assert.Equal("Error: " + failures["call_calc"], toolMessages["call_calc"]);
    }
}
