using System.Net;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Agents;

/// <summary>The native agents API: agents as resources stored in the cluster, over real HTTP.</summary>
public sealed class AgentsApiTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task An_agent_is_created_read_replaced_patched_and_deleted()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """
            {"name": "helper", "instructions": "Be brief.", "tools": ["calculate"], "temperature": 0.5, "maxTokens": 256,
             "maxParallelTools": 2, "toolTimeoutSeconds": 12.5, "maxDepth": 3, "historyBudget": 4000, "multitaskStrategy": "enqueue"}
            """, cancellationToken: Guard);
        var createdBody = await created.JsonAsync(Guard);
        using var again = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "helper"}""", cancellationToken: Guard);
        using var read = await client.GetAsync("/agents/helper", Guard);
        var readBody = await read.JsonAsync(Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/agents/helper", created.Headers.Location?.OriginalString);
        Assert.Equal("\"1\"", created.Headers.ETag?.Tag);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("agent_exists", (await again.JsonAsync(Guard)).Str("code"));
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("\"1\"", read.Headers.ETag?.Tag);
        Assert.Equal(createdBody.GetRawText(), readBody.GetRawText());
        Assert.Equal("Be brief.", readBody.Str("instructions"));
        Assert.Equal(["calculate"], readBody.GetProperty("tools").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(0.5, readBody.GetProperty("temperature").GetDouble());
        Assert.Equal(256, readBody.GetProperty("maxTokens").GetInt32());
        Assert.Equal(2, readBody.GetProperty("maxParallelTools").GetInt32());
        Assert.Equal(12.5, readBody.GetProperty("toolTimeoutSeconds").GetDouble());
        Assert.Equal(3, readBody.GetProperty("maxDepth").GetInt32());
        Assert.Equal(4000, readBody.GetProperty("historyBudget").GetInt32());
        Assert.Equal("enqueue", readBody.Str("multitaskStrategy"));
        Assert.Equal(1, readBody.GetProperty("version").GetInt64());
        Assert.Equal("api", readBody.Str("source"));
        Assert.False(readBody.GetProperty("configured").GetBoolean());

        // PATCH is a JSON merge patch: fields named change, null resets one to its default, the rest stay.
        using var patched = await client.SendJsonAsync(
            HttpMethod.Patch, "/agents/helper", """{"temperature": null, "tools": ["calculate", "get_time"], "maxDepth": 5}""",
            contentType: "application/merge-patch+json", cancellationToken: Guard);
        var patchedBody = await patched.JsonAsync(Guard);

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("\"2\"", patched.Headers.ETag?.Tag);
        Assert.Equal(JsonValueKind.Null, patchedBody.GetProperty("temperature").ValueKind);
        Assert.Equal(["calculate", "get_time"], patchedBody.GetProperty("tools").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(5, patchedBody.GetProperty("maxDepth").GetInt32());
        Assert.Equal("Be brief.", patchedBody.Str("instructions"));
        Assert.Equal(256, patchedBody.GetProperty("maxTokens").GetInt32());
        Assert.Equal(createdBody.Str("createdAt"), patchedBody.Str("createdAt"));

        // PUT replaces: fields left out take their defaults.
        using var replaced = await client.SendJsonAsync(HttpMethod.Put, "/agents/helper", """{"instructions": "Be thorough.", "multitaskStrategy": "steer"}""", cancellationToken: Guard);
        var replacedBody = await replaced.JsonAsync(Guard);
        using var putMissing = await client.SendJsonAsync(HttpMethod.Put, "/agents/nobody", """{"instructions": "x"}""", cancellationToken: Guard);

        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
        Assert.Equal(3, replacedBody.GetProperty("version").GetInt64());
        Assert.Equal("Be thorough.", replacedBody.Str("instructions"));
        Assert.Equal("steer", replacedBody.Str("multitaskStrategy"));
        Assert.Equal(JsonValueKind.Null, replacedBody.GetProperty("tools").ValueKind);
        Assert.Equal(JsonValueKind.Null, replacedBody.GetProperty("maxTokens").ValueKind);
        Assert.Equal(JsonValueKind.Null, replacedBody.GetProperty("historyBudget").ValueKind);
        Assert.Equal(8, replacedBody.GetProperty("maxDepth").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, putMissing.StatusCode);

        using var deleted = await client.DeleteAsync("/agents/helper", Guard);
        using var readDeleted = await client.GetAsync("/agents/helper", Guard);
        using var deletedAgain = await client.DeleteAsync("/agents/helper", Guard);
        using var patchDeleted = await client.SendJsonAsync(HttpMethod.Patch, "/agents/helper", """{"maxDepth": 2}""", cancellationToken: Guard);
        using var recreated = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "helper"}""", cancellationToken: Guard);
        var recreatedBody = await recreated.JsonAsync(Guard);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, readDeleted.StatusCode);
        Assert.Equal("agent_not_found", (await readDeleted.JsonAsync(Guard)).Str("code"));
        Assert.Equal(HttpStatusCode.NotFound, deletedAgain.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, patchDeleted.StatusCode);
        Assert.Equal(HttpStatusCode.Created, recreated.StatusCode);
        // Versions are never reused for a name: the delete was version 4.
        Assert.Equal(5, recreatedBody.GetProperty("version").GetInt64());
        Assert.Equal(8, recreatedBody.GetProperty("maxDepth").GetInt32());
    }

    [Fact]
    public async Task Each_invalid_field_gets_a_400_that_names_it_and_nothing_is_stored()
    {
        (string Body, string Field, string Message)[] cases =
        [
            ("""{"name": "probe", "temperature": 2.5}""", "temperature", "temperature must be between 0 and 2"),
            ("""{"name": "probe", "temperature": "warm"}""", "temperature", "temperature must be between 0 and 2"),
            ("""{"name": "probe", "maxTokens": 0}""", "maxTokens", "maxTokens must be a whole number"),
            ("""{"name": "probe", "maxParallelTools": 65}""", "maxParallelTools", "maxParallelTools must be a whole number between 1 and 64"),
            ("""{"name": "probe", "toolTimeoutSeconds": 0}""", "toolTimeoutSeconds", "toolTimeoutSeconds must be"),
            ("""{"name": "probe", "maxDepth": 101}""", "maxDepth", "maxDepth must be a whole number between 1 and 100"),
            ("""{"name": "probe", "historyBudget": -5}""", "historyBudget", "historyBudget must be"),
            ("""{"name": "probe", "historyBudget": 1.5}""", "historyBudget", "historyBudget must be"),
            ("""{"name": "probe", "multitaskStrategy": "yolo"}""", "multitaskStrategy", "reject, enqueue, interrupt, rollback, steer"),
            ("""{"name": "probe", "tools": ["calculate", "get_weather"]}""", "tools[1]", "no tool is named 'get_weather'"),
            ("""{"name": "probe", "tools": ["calculate", "calculate"]}""", "tools[1]", "listed twice"),
            ("""{"name": "probe", "tools": "calculate"}""", "tools", "tools must be an array"),
            ("""{"name": "probe", "model": "gpt-9"}""", "model", "no model is named 'gpt-9'"),
            ("""{"name": "probe", "instructions": 42}""", "instructions", "instructions must be a string"),
            ("""{"name": "probe", "max_tokens": 5}""", "max_tokens", "did you mean 'maxTokens'"),
            ("""{"name": "no spaces"}""", "name", "name must be 1-64 characters"),
            ("""{"temperature": 1}""", "name", "name is required"),
            ("""[1, 2]""", "body", "body must be a JSON object"),
            ("""{"name": "probe", """, "body", "not valid JSON"),
        ];
        await using var app = new GatewayApp();
        var client = app.Client;

        foreach (var (body, field, message) in cases)
        {
            using var response = await client.SendJsonAsync(HttpMethod.Post, "/agents", body, cancellationToken: Guard);
            var problem = await response.JsonAsync(Guard);

            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{body}: {response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var errors), $"{body}: {problem}");
            Assert.Contains(message, errors[0].GetString(), StringComparison.Ordinal);
            Assert.Contains(message, problem.Str("detail"), StringComparison.Ordinal);
        }

        using var probe = await client.GetAsync("/agents/probe", Guard);
        Assert.Equal(HttpStatusCode.NotFound, probe.StatusCode);

        // A write that fails validation changes nothing.
        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "probe", "temperature": 1}""", cancellationToken: Guard);
        using var badPatch = await client.SendJsonAsync(HttpMethod.Patch, "/agents/probe", """{"temperature": 3, "maxDepth": 4}""", cancellationToken: Guard);
        using var rename = await client.SendJsonAsync(HttpMethod.Put, "/agents/probe", """{"name": "other"}""", cancellationToken: Guard);
        var after = await client.GetFromJsonAsync<JsonElement>("/agents/probe", Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badPatch.StatusCode);
        Assert.True((await badPatch.JsonAsync(Guard)).GetProperty("errors").TryGetProperty("temperature", out _));
        Assert.Equal(HttpStatusCode.BadRequest, rename.StatusCode);
        Assert.True((await rename.JsonAsync(Guard)).GetProperty("errors").TryGetProperty("name", out _));
        Assert.Equal(1, after.GetProperty("version").GetInt64());
        Assert.Equal(1.0, after.GetProperty("temperature").GetDouble());
        Assert.Equal(8, after.GetProperty("maxDepth").GetInt32());
    }

    [Fact]
    public async Task If_match_makes_writes_conditional_and_if_none_match_reads()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "shared"}""", cancellationToken: Guard);

        using var first = await client.SendJsonAsync(HttpMethod.Patch, "/agents/shared", """{"instructions": "first"}""", ifMatch: "\"1\"", cancellationToken: Guard);
        using var stale = await client.SendJsonAsync(HttpMethod.Patch, "/agents/shared", """{"instructions": "stale"}""", ifMatch: "\"1\"", cancellationToken: Guard);
        var staleProblem = await stale.JsonAsync(Guard);
        using var stalePut = await client.SendJsonAsync(HttpMethod.Put, "/agents/shared", """{"instructions": "stale"}""", ifMatch: "\"1\"", cancellationToken: Guard);
        using var staleDelete = await client.SendJsonAsync(HttpMethod.Delete, "/agents/shared", null, ifMatch: "\"1\"", cancellationToken: Guard);
        using var anyVersion = await client.SendJsonAsync(HttpMethod.Put, "/agents/shared", """{"instructions": "any"}""", ifMatch: "*", cancellationToken: Guard);

        using var conditional = new HttpRequestMessage(HttpMethod.Get, "/agents/shared");
        conditional.Headers.TryAddWithoutValidation("If-None-Match", "\"3\"");
        using var notModified = await client.SendAsync(conditional, Guard);
        var current = await client.GetFromJsonAsync<JsonElement>("/agents/shared", Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("\"2\"", first.Headers.ETag?.Tag);
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Equal("\"2\"", stale.Headers.ETag?.Tag);
        Assert.Equal("version_mismatch", staleProblem.Str("code"));
        Assert.Equal(2, staleProblem.GetProperty("version").GetInt64());
        Assert.Equal(HttpStatusCode.PreconditionFailed, stalePut.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, staleDelete.StatusCode);
        Assert.Equal(HttpStatusCode.OK, anyVersion.StatusCode);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal("any", current.Str("instructions"));
        Assert.Equal(3, current.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Deleting_a_configured_agent_hides_it_until_it_is_created_again()
    {
        await using var app = new GatewayApp(new Dictionary<string, string?> { ["Agents:pirate:Instructions"] = "Talk like a pirate." });
        var client = app.Client;

        var configured = await client.GetFromJsonAsync<JsonElement>("/agents/pirate", Guard);
        using var deleted = await client.DeleteAsync("/agents/pirate", Guard);
        using var read = await client.GetAsync("/agents/pirate", Guard);
        var seedList = await client.GetFromJsonAsync<JsonElement>("/agents", Guard);
        var models = await client.GetFromJsonAsync<JsonElement>("/v1/models", Guard);
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var message = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "ahoy", agent = "pirate" }, Guard);
        using var deleteDefault = await client.DeleteAsync("/agents/default", Guard);
        using var recreated = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "pirate", "instructions": "Talk like a parrot."}""", cancellationToken: Guard);
        var recreatedBody = await recreated.JsonAsync(Guard);

        Assert.Equal("configuration", configured.Str("source"));
        Assert.Equal(0, configured.GetProperty("version").GetInt64());
        Assert.True(configured.GetProperty("configured").GetBoolean());
        Assert.Equal("Talk like a pirate.", configured.Str("instructions"));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
        Assert.DoesNotContain(seedList.GetProperty("agents").EnumerateArray(), a => a.Str("name") == "pirate");
        Assert.DoesNotContain(models.GetProperty("data").EnumerateArray(), m => m.Str("id") == "pirate");
        Assert.Equal(HttpStatusCode.BadRequest, message.StatusCode);
        Assert.True((await message.JsonAsync(Guard)).GetProperty("errors").TryGetProperty("agent", out _));
        Assert.Equal(HttpStatusCode.Conflict, deleteDefault.StatusCode);
        Assert.Equal("agent_protected", (await deleteDefault.JsonAsync(Guard)).Str("code"));
        Assert.Equal(HttpStatusCode.Created, recreated.StatusCode);
        Assert.Equal("Talk like a parrot.", recreatedBody.Str("instructions"));
        Assert.Equal("api", recreatedBody.Str("source"));
        Assert.True(recreatedBody.GetProperty("configured").GetBoolean());
        Assert.Equal(2, recreatedBody.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task An_agents_settings_reach_the_model()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Four."), ScriptedResponse.Text("Five."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """
            {"name": "terse", "instructions": "Answer in one word.", "model": "fake-model", "tools": ["calculate"], "temperature": 0.25, "maxTokens": 64}
            """, cancellationToken: Guard);
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var first = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "2+2?", agent = "terse" }, Guard);
        using var patched = await client.SendJsonAsync(HttpMethod.Patch, "/agents/terse", """{"tools": [], "temperature": null}""", cancellationToken: Guard);
        using var second = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "2+3?", agent = "terse" }, Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var request = model.Requests[0];
        Assert.Equal("fake-model", request.Model);
        Assert.Equal("Answer in one word.", request.Messages[0]!["content"]!.GetValue<string>());
        Assert.Equal(0.25, request.Body!["temperature"]!.GetValue<double>(), 3);
        Assert.Equal(64, (request.Body!["max_completion_tokens"] ?? request.Body!["max_tokens"])!.GetValue<int>());
        Assert.Equal(["calculate"], request.Tools.Select(t => t!["function"]!["name"]!.GetValue<string>()));
        var after = model.Requests[1];
        Assert.Empty(after.Tools);
        Assert.Null(after.Body!["temperature"]);
    }

    [Fact]
    public async Task Seed_003s_agent_endpoints_work_on_top_of_the_native_ones()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var created = await client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "helper", "instructions": "Be brief.", "maxParallelTools": 2}""", cancellationToken: Guard);
        var seedList = await client.GetFromJsonAsync<JsonElement>("/agents", Guard);
        using var seedSave = await client.PostAsJsonAsync("/agents/helper", new { name = "Helpful Helga", tool_call_timeout = 5.0 }, Guard);
        var native = await client.GetFromJsonAsync<JsonElement>("/agents/helper", Guard);
        var nativeList = await client.GetFromJsonAsync<JsonElement>("/agents?format=native", Guard);
        using var badFormat = await client.GetAsync("/agents?format=yaml", Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var helper = seedList.GetProperty("agents").EnumerateArray().Single(a => a.Str("name") == "helper");
        Assert.Equal("Be brief.", helper.Str("instructions"));
        Assert.Equal("demo", helper.Str("model"));
        Assert.Equal(2, helper.GetProperty("max_parallel_tools").GetInt32());
        Assert.Equal(30, helper.GetProperty("tool_call_timeout").GetDouble());
        Assert.False(helper.TryGetProperty("version", out _));
        Assert.Equal(HttpStatusCode.OK, seedSave.StatusCode);
        Assert.Equal("Helpful Helga", (await seedSave.JsonAsync(Guard)).GetProperty("agent").Str("display_name"));
        Assert.Equal(5, native.GetProperty("toolTimeoutSeconds").GetDouble());
        Assert.Equal("Be brief.", native.Str("instructions"));
        Assert.Equal(2, native.GetProperty("maxParallelTools").GetInt32());
        Assert.Equal(2, native.GetProperty("version").GetInt64());
        Assert.Equal(["default", "helper"], nativeList.GetProperty("data").EnumerateArray().Select(a => a.Str("name")));
        Assert.Equal(HttpStatusCode.BadRequest, badFormat.StatusCode);
        Assert.True((await badFormat.JsonAsync(Guard)).GetProperty("errors").TryGetProperty("format", out _));
    }
}

/// <summary>Requests with a raw JSON body and conditional headers, and JSON answers.</summary>
internal static class AgentRequests
{
    public static async Task<HttpResponseMessage> SendJsonAsync(
        this HttpClient client, HttpMethod method, string path, string? json, string? ifMatch = null, string contentType = "application/json",
        CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, contentType);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return await client.SendAsync(request, cancellationToken);
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response, CancellationToken cancellationToken) =>
        await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);

    public static string? Str(this JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
