using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway.Agents;

namespace Conversations.Tests.Gateway.Models;

/// <summary>
/// The model registry over real HTTP: <c>Models:{name}</c> entries on a second fake endpoint beside the
/// <c>OPENAI_*</c> one, listed by <c>/v1/models</c> and <c>/models</c> without their keys, and a non-streaming model
/// that answers as one delta.
/// </summary>
public sealed class ModelRegistryTests
{
    private const string AlphaKey = "sk-alpha-SECRET-1234";
    private const string BatchKey = "sk-batch-SECRET-5678";

    private static CancellationToken Guard => TestTimeouts.Guard();

    private static Dictionary<string, string?> Registry(FakeOpenAiServer other) => new()
    {
        ["Models:alpha:Kind"] = "compatible",
        ["Models:alpha:BaseUrl"] = other.BaseUrl.ToString(),
        ["Models:alpha:ApiKey"] = AlphaKey,
        ["Models:alpha:Model"] = "alpha-upstream",
        ["Models:alpha:ContextWindow"] = "8000",
        ["Models:alpha:MaxRetries"] = "0",
        ["Models:batch:BaseUrl"] = other.BaseUrl.ToString(),
        ["Models:batch:ApiKey"] = BatchKey,
        ["Models:batch:Streaming"] = "false",
        ["Models:batch:Tools"] = "false",
        ["Models:batch:MaxRetries"] = "0",
        ["Models:whole:BaseUrl"] = other.BaseUrl.ToString(),
        ["Models:whole:Streaming"] = "false",
        ["Models:whole:MaxRetries"] = "0",
    };

    [Fact]
    public async Task Registered_models_are_listed_with_their_capabilities_and_never_their_keys()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var other = await FakeOpenAiServer.StartAsync(Guard);
        await using var app = GatewayApp.WithModel(model, Registry(other));
        var client = app.Client;

        using var openAi = await client.GetAsync("/v1/models", Guard);
        using var native = await client.GetAsync("/models", Guard);
        using var one = await client.GetAsync("/models/alpha", Guard);
        using var missing = await client.GetAsync("/models/nope", Guard);
        using var health = await client.GetAsync("/health", Guard);
        var openAiText = await openAi.Content.ReadAsStringAsync(Guard);
        var nativeText = await native.Content.ReadAsStringAsync(Guard);

        var ids = JsonDocument.Parse(openAiText).RootElement.GetProperty("data").EnumerateArray().Select(m => m.Str("id")).ToList();
        Assert.Equal(["fake-model", "alpha", "batch", "whole", "default"], ids);
        var models = JsonDocument.Parse(nativeText).RootElement;
        Assert.Equal("fake-model", models.Str("defaultModel"));
        var byName = models.GetProperty("data").EnumerateArray().ToDictionary(m => m.Str("name")!);
        Assert.Equal(["fake-model", "alpha", "batch", "whole"], byName.Keys);
        Assert.True(byName["fake-model"].GetProperty("default").GetBoolean());
        Assert.Equal("alpha-upstream", byName["alpha"].Str("model"));
        Assert.Equal("compatible", byName["alpha"].Str("kind"));
        Assert.Equal(8000, byName["alpha"].GetProperty("capabilities").GetProperty("contextWindow").GetInt32());
        Assert.True(byName["alpha"].GetProperty("capabilities").GetProperty("streaming").GetBoolean());
        Assert.False(byName["batch"].GetProperty("capabilities").GetProperty("streaming").GetBoolean());
        Assert.False(byName["batch"].GetProperty("capabilities").GetProperty("tools").GetBoolean());
        Assert.True(byName["whole"].GetProperty("capabilities").GetProperty("tools").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal("alpha", (await one.JsonAsync(Guard)).Str("name"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        foreach (var body in new[] { openAiText, nativeText, await health.Content.ReadAsStringAsync(Guard) })
        {
            Assert.DoesNotContain("SECRET", body, StringComparison.Ordinal);
            Assert.DoesNotContain(other.BaseUrl.Authority, body, StringComparison.Ordinal);
            Assert.DoesNotContain(model.BaseUrl.Authority, body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_registered_model_is_called_on_its_endpoint_with_its_key_and_model_id()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var other = await FakeOpenAiServer.StartAsync(Guard);
        other.Enqueue(ScriptedResponse.Text("From ", "alpha."), ScriptedResponse.Text("Alpha again."));
        await using var app = GatewayApp.WithModel(model, Registry(other));
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "alphas", "model": "alpha", "historyBudget": 8000}""", cancellationToken: Guard);
        using var tooLarge = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "big", "model": "alpha", "historyBudget": 8001}""", cancellationToken: Guard);
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var run = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hi", stream = true, agent = "alphas" }, Guard);
        var events = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        // The OpenAI dialect's model names the registered model too.
        using var completion = await client.PostAsJsonAsync("/v1/chat/completions", new { model = "alpha", messages = new[] { new { role = "user", content = "hi" } } }, Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, tooLarge.StatusCode);
        Assert.Contains("context window", (await tooLarge.JsonAsync(Guard)).GetProperty("errors").GetProperty("historyBudget")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Equal("alpha-upstream", events[0].Str("model"));
        Assert.Equal("From alpha.", string.Concat(events.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        Assert.Empty(model.Requests);
        Assert.Equal(2, other.Requests.Count);
        Assert.All(other.Requests, r => Assert.Equal("alpha-upstream", r.Model));
        Assert.All(other.Requests, r => Assert.Equal($"Bearer {AlphaKey}", r.Authorization));
        Assert.All(other.Requests, r => Assert.True(r.Stream));
    }

    [Fact]
    public async Task A_non_streaming_model_is_called_whole_and_answers_as_one_delta()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var other = await FakeOpenAiServer.StartAsync(Guard);
        other.Enqueue(ScriptedResponse.Text("The whole ", "answer ", "at once.").WithUsage(12, 5));
        await using var app = GatewayApp.WithModel(model, Registry(other));
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "batcher", "model": "batch"}""", cancellationToken: Guard);
        using var withTools = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "tooled", "model": "batch", "tools": ["calculate"]}""", cancellationToken: Guard);
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var run = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "tell me", stream = true, agent = "batcher" }, Guard);
        var events = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, withTools.StatusCode);
        Assert.Contains("cannot call tools", (await withTools.JsonAsync(Guard)).GetProperty("errors").GetProperty("tools")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal("run.completed", events[^1].Type);
        var delta = Assert.Single(events, e => e.Type == "text.delta");
        Assert.Equal("The whole answer at once.", delta.Str("text"));
        var completed = Assert.Single(events, e => e.Type == "message.completed");
        Assert.Equal("The whole answer at once.", completed.Str("content"));
        Assert.Equal(17, completed.Data.GetProperty("usage").GetProperty("totalTokens").GetInt32());
        var request = Assert.Single(other.Requests);
        Assert.False(request.Stream);
        Assert.Null(request.Body!["stream_options"]);
        Assert.Equal("batch", request.Model);
        Assert.Equal($"Bearer {BatchKey}", request.Authorization);
        // Tools: false: the model is never sent the agent's tools.
        Assert.Empty(request.Tools);
    }

    [Fact]
    public async Task A_non_streaming_model_calls_tools_and_the_loop_goes_on()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var other = await FakeOpenAiServer.StartAsync(Guard);
        other.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"6 * 7\"}")),
            ScriptedResponse.Text("It is 42."));
        await using var app = GatewayApp.WithModel(model, Registry(other));
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "wholesale", "model": "whole", "tools": ["calculate"]}""", cancellationToken: Guard);
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var run = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "6 times 7?", stream = true, agent = "wholesale" }, Guard);
        var events = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("run.completed", events[^1].Type);
        var tool = Assert.Single(events, e => e.Type == "tool_call.completed");
        Assert.Equal("call_1", tool.Str("callId"));
        Assert.Equal("42", tool.Str("result"));
        Assert.Equal("{\"expression\":\"6 * 7\"}", Assert.Single(events, e => e.Type == "tool_call.arguments.delta").Str("delta"));
        Assert.Equal("It is 42.", Assert.Single(events, e => e.Type == "text.delta").Str("text"));
        Assert.Equal(2, other.Requests.Count);
        Assert.All(other.Requests, r => Assert.False(r.Stream));
        Assert.Equal(["calculate"], other.Requests[0].Tools.Select(t => t!["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("tool", other.Requests[1].Messages[^1]!["role"]!.GetValue<string>());
        Assert.Equal("42", other.Requests[1].Messages[^1]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task With_nothing_configured_the_demo_model_is_the_registry()
    {
        await using var app = new GatewayApp();

        var models = await app.Client.GetFromJsonAsync<JsonElement>("/models", Guard);

        var demo = Assert.Single(models.GetProperty("data").EnumerateArray());
        Assert.Equal("demo", models.Str("defaultModel"));
        Assert.Equal("demo", demo.Str("name"));
        Assert.Equal("demo", demo.Str("kind"));
        Assert.True(demo.GetProperty("default").GetBoolean());
    }
}
