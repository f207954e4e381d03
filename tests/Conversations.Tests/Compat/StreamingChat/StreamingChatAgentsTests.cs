using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.StreamingChat;

/// <summary>Seed 003's agent management and its <c>/docs</c> page.</summary>
public sealed class StreamingChatAgentsTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_created_agent_is_listed_and_answers_with_its_instructions()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("4."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var created = await client.PostAsJsonAsync("/agents/my_custom_agent", new
        {
            name = "MyAssistant",
            instructions = "You are a specialized assistant for sums.",
            model = "custom-model",
            max_parallel_tools = 3,
            tool_call_timeout = 12.5,
        }, Guard);
        var list = await client.GetFromJsonAsync<JsonElement>("/agents", Guard);
        var events = await client.StreamChatAsync(new { message = "2+2?", agent = "my_custom_agent" }, Guard);

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var agents = list.GetProperty("agents").EnumerateArray().ToDictionary(a => a.Str("name")!);
        Assert.Contains("default", agents.Keys);
        var agent = agents["my_custom_agent"];
        Assert.Equal("MyAssistant", agent.Str("display_name"));
        Assert.Equal("You are a specialized assistant for sums.", agent.Str("instructions"));
        Assert.Equal("custom-model", agent.Str("model"));
        Assert.Equal(3, agent.GetProperty("max_parallel_tools").GetInt32());
        Assert.Equal(12.5, agent.GetProperty("tool_call_timeout").GetDouble());
        Assert.Equal(["calculate", "get_time"], agent.GetProperty("tools").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("fake-model", agents["default"].Str("model"));
        Assert.Equal("chat_complete", events[^1].EventType());
        Assert.Equal("my_custom_agent", events[^1].Str("agent"));
        var system = model.Requests[0].Messages.First(m => m!["role"]!.GetValue<string>() == "system");
        Assert.Equal("You are a specialized assistant for sums.", system!["content"]!.GetValue<string>());
        Assert.Equal("custom-model", model.Requests[0].Model);
    }

    [Theory]
    [InlineData("ok_agent", "{\"max_parallel_tools\":0}", "max_parallel_tools")]
    [InlineData("ok_agent", "{\"max_parallel_tools\":65}", "max_parallel_tools")]
    [InlineData("ok_agent", "{\"tool_call_timeout\":0}", "tool_call_timeout")]
    [InlineData("ok_agent", "{\"tool_call_timeout\":-1.5}", "tool_call_timeout")]
    [InlineData("ok_agent", "{\"tool_call_timeout\":3600.5}", "tool_call_timeout")]
    [InlineData("ok_agent", "{\"instructions\":\"\"}", "instructions")]
    [InlineData("ok_agent", "{\"tools\":[\"calculate\",\"get_weather\"]}", "tools[1]")]
    [InlineData("ok_agent", "{\"max_parallel_tools\":\"three\"}", "max_parallel_tools")]
    [InlineData("bad%20name", "{}", "agent_name")]
    public async Task Invalid_agent_config_gets_400_naming_the_field(string agentName, string body, string field)
    {
        await using var app = new GatewayApp();

        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await app.Client.PostAsync($"/agents/{agentName}", content, Guard);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var list = await app.Client.GetFromJsonAsync<JsonElement>("/agents", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.DoesNotContain(list.GetProperty("agents").EnumerateArray(), a => a.Str("name") == "ok_agent");
    }

    [Fact]
    public async Task Instructions_longer_than_the_limit_are_rejected()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostAsJsonAsync("/agents/long", new { instructions = new string('x', 32_001) }, Guard);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(problem.GetProperty("errors").TryGetProperty("instructions", out _));
    }

    [Fact]
    public async Task Updating_an_agent_keeps_the_fields_left_out()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var first = await client.PostAsJsonAsync("/agents/helper", new { name = "Helper", instructions = "Be brief.", max_parallel_tools = 2 }, Guard);
        using var second = await client.PostAsJsonAsync("/agents/helper", new { tool_call_timeout = 5.0 }, Guard);
        var saved = (await second.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("agent");

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("Be brief.", saved.Str("instructions"));
        Assert.Equal(2, saved.GetProperty("max_parallel_tools").GetInt32());
        Assert.Equal(5.0, saved.GetProperty("tool_call_timeout").GetDouble());
        Assert.Equal("Helper", saved.Str("display_name"));
    }

    [Fact]
    public async Task Docs_page_is_self_contained_and_renders_the_openapi_document()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var docs = await client.GetAsync("/docs", Guard);
        var html = await docs.Content.ReadAsStringAsync(Guard);
        var openApi = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", Guard);
        using var redoc = await client.GetAsync("/redoc", Guard);

        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Equal("text/html", docs.Content.Headers.ContentType?.MediaType);
        Assert.Contains("fetch('/openapi/v1.json')", html);
        Assert.DoesNotMatch(new Regex("(src|href)=\"(https?:)?//", RegexOptions.IgnoreCase), html);
        var paths = openApi.GetProperty("paths");
        Assert.True(paths.GetProperty("/chat/stream").TryGetProperty("post", out var stream));
        Assert.False(string.IsNullOrEmpty(stream.Str("summary")));
        Assert.True(paths.TryGetProperty("/agents/{agent_name}", out _));
        Assert.Equal("/docs", redoc.RequestMessage?.RequestUri?.AbsolutePath);
        Assert.Equal(html, await redoc.Content.ReadAsStringAsync(Guard));
    }
}
