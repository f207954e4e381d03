using System.Net;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Agents;

/// <summary>
/// HTTP tools an agent declares through the agents API (<c>httpTools</c>): checked by the same rules as configuration's,
/// stored with the agent, and called with real HTTP by that agent's runs only, credentials named, never stored.
/// </summary>
public sealed class AgentHttpToolsTests
{
    private const string Secret = "wk-agent-5550001-SECRET";

    private static CancellationToken Guard => TestTimeouts.Guard();

    private static string WeatherAgent(FakeHttpService service) => $$$"""
        {"name": "weather", "tools": [], "httpTools": [{
          "name": "get_weather", "description": "Current weather in a city.",
          "url": "{{{service.BaseUrl}}}/weather/{city}", "method": "GET",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
          "headers": {"Authorization": "Bearer ${secret:WEATHER_KEY}"}, "timeoutSeconds": 5
        }]}
        """;

    [Fact]
    public async Task An_agent_created_with_an_http_tool_calls_it_and_other_agents_do_not_see_it()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_w", "get_weather", "{\"city\":\"Oslo\"}")),
            ScriptedResponse.Text("Cold in Oslo."),
            ScriptedResponse.Text("Hello."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["WEATHER_KEY"] = Secret });
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", WeatherAgent(service), cancellationToken: Guard);
        var agent = await created.JsonAsync(Guard);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var tool = Assert.Single(agent.GetProperty("httpTools").EnumerateArray());
        Assert.Equal("get_weather", tool.Str("name"));
        // The header is kept as declared: a reference to the secret, never its value.
        Assert.Equal("Bearer ${secret:WEATHER_KEY}", tool.GetProperty("headers").Str("Authorization"));
        Assert.Equal(5, tool.GetProperty("timeoutSeconds").GetDouble());

        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "weather in Oslo?", stream = true, agent = "weather" }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal("run.completed", events[^1].Type);
        var offered = model.Requests[0].Tools.Select(t => t!["function"]!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["get_weather"], offered);
        var request = Assert.Single(service.Requests);
        Assert.Equal("/weather/Oslo", request.Path);
        Assert.Equal("Bearer " + Secret, request.Headers["Authorization"]);
        var completed = Assert.Single(events, e => e.Type == "tool_call.completed");
        Assert.Contains("Oslo", completed.Str("result"), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, completed.Str("result"), StringComparison.Ordinal);

        // The default agent is not offered the weather agent's tool.
        var other = await client.CreateThreadAsync(cancellationToken: Guard);
        using var plain = await client.PostStreamAsync($"/threads/{other}/messages", new { content = "hi", stream = true }, Guard);
        Assert.Equal("run.completed", (await plain.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard))[^1].Type);
        Assert.DoesNotContain(model.Requests[2].Tools, t => t!["function"]!["name"]!.GetValue<string>() == "get_weather");

        var stored = await client.GetStringAsync("/agents/weather", Guard);
        Assert.DoesNotContain(Secret, stored, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"name":"get weather","description":"d","url":"http://127.0.0.1:9/x"}]""", "httpTools[0].name", "a tool name is 1 to 64")]
    [InlineData("""[{"name":"calculate","description":"d","url":"http://127.0.0.1:9/x"}]""", "httpTools[0].name", "'calculate' is the name of a server tool")]
    [InlineData("""[{"name":"t","description":"d","url":"ftp://127.0.0.1/x"}]""", "httpTools[0].url", "must be an absolute http(s) URL")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x?k=${secret:K}"}]""", "httpTools[0].url", "secrets go in headers")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","method":"TRACE"}]""", "httpTools[0].method", "must be GET, POST, PUT, PATCH or DELETE")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","timeoutSeconds":120}]""", "httpTools[0].timeoutSeconds", "between 10 ms and 60 s")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","maxResponseChars":5}]""", "httpTools[0].maxResponseChars", "between 100 and 1000000")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","parameters":{"type":12}}]""", "httpTools[0].parameters", "not a JSON schema the validator can compile")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x"},{"name":"t","description":"d","url":"http://h/y"}]""", "httpTools[1].name", "another tool of the agent")]
    [InlineData("""[{"name":"t","url":"http://h/x"}]""", "httpTools[0].description", "is required")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","headers":{"X":1}}]""", "httpTools[0].headers.X", "must be a string")]
    [InlineData("""[{"name":"t","description":"d","url":"http://h/x","verb":"GET"}]""", "httpTools[0].verb", "not a field of an HTTP tool")]
    [InlineData("""{"name":"t"}""", "httpTools", "must be an array")]
    public async Task A_bad_http_tool_is_refused_naming_its_field_and_nothing_is_stored(string httpTools, string field, string message)
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var response = await client.SendJsonAsync(HttpMethod.Post, "/agents", $$"""{"name": "bad", "httpTools": {{httpTools}}}""", cancellationToken: Guard);
        var problem = await response.JsonAsync(Guard);
        using var read = await client.GetAsync("/agents/bad", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var errors), problem.GetRawText());
        Assert.Contains(message, errors[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task A_patch_that_breaks_an_http_tool_is_refused_and_the_agent_keeps_its_tools()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var app = new GatewayApp(new Dictionary<string, string?> { ["WEATHER_KEY"] = Secret });
        var client = app.Client;
        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", WeatherAgent(service), cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        using var patch = await client.SendJsonAsync(
            HttpMethod.Patch, "/agents/weather", """{"httpTools": [{"name": "get_weather", "description": "d", "url": "not a url"}]}""",
            cancellationToken: Guard);
        var after = await (await client.GetAsync("/agents/weather", Guard)).JsonAsync(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, patch.StatusCode);
        Assert.True((await patch.JsonAsync(Guard)).GetProperty("errors").TryGetProperty("httpTools[0].url", out _));
        Assert.Equal(1, after.GetProperty("version").GetInt64());
        Assert.EndsWith("/weather/{city}", Assert.Single(after.GetProperty("httpTools").EnumerateArray()).Str("url"), StringComparison.Ordinal);
    }
}
