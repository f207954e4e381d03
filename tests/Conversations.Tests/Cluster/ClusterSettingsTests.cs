using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster;

/// <summary>
/// Gateways hold no model or agent settings of their own: what they report and enforce comes from the silos, and
/// what seed 003 remembers per agent lives in the cluster, so every gateway answers the same.
/// </summary>
public sealed class ClusterSettingsTests : PostgresTestBase
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Gateways_report_and_enforce_the_silos_models_not_settings_of_their_own()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Whole answer."));
        var siloOnly = new Dictionary<string, string?>
        {
            ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-test",
            ["OPENAI_MODEL"] = "fake-model",
            ["OpenAI__MaxRetries"] = "0",
            ["OpenAI__NonStreamingModels"] = "batch-model",
        };
        // The gateways get no model settings at all: left alone, they would know only the demo model.
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 2, settings: null, Guard, siloOnly);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;

        var health = await b.GetFromJsonAsync<JsonElement>("health", Guard);
        var models = await a.GetFromJsonAsync<JsonElement>("v1/models", Guard);
        using var refused = await b.PostAsJsonAsync("completion", new { message = "Hi", model = "batch-model", stream = true }, Guard);
        using var whole = await a.PostAsJsonAsync("completion", new { message = "Hi", model = "batch-model", stream = false }, Guard);

        Assert.Equal("fake-model", health.GetProperty("model").GetString());
        Assert.Equal("cluster", health.GetProperty("mode").GetString());
        Assert.Contains("fake-model", models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.DoesNotContain("demo", models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("does not support streaming", (await refused.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal("batch-model", Assert.Single(model.Requests).Model);
    }

    [Fact]
    public async Task An_agents_conversation_and_display_name_are_the_same_on_every_gateway()
    {
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 2, settings: null, Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;

        using var saved = await a.PostAsJsonAsync("agents/helper", new { name = "Helpful Helga", instructions = "Be brief." }, Guard);
        using var first = await a.PostAsJsonAsync("chat", new { message = "what is 2 + 2?", agent = "helper" }, Guard);
        using var second = await b.PostAsJsonAsync("chat", new { message = "and 3 + 3?", agent = "helper" }, Guard);
        using var reset = await b.PostAsJsonAsync("chat", new { message = "start over", agent = "helper", reset_history = true }, Guard);
        using var afterReset = await a.PostAsJsonAsync("chat", new { message = "still there?", agent = "helper" }, Guard);
        var agents = await b.GetFromJsonAsync<JsonElement>("agents", Guard);

        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        var firstThread = (await first.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("thread_id").GetString();
        var secondThread = (await second.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("thread_id").GetString();
        var resetThread = (await reset.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("thread_id").GetString();
        var afterResetThread = (await afterReset.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("thread_id").GetString();
        Assert.Equal(firstThread, secondThread);
        Assert.NotEqual(firstThread, resetThread);
        Assert.Equal(resetThread, afterResetThread);
        var helper = agents.GetProperty("agents").EnumerateArray().Single(x => x.GetProperty("name").GetString() == "helper");
        Assert.Equal("Helpful Helga", helper.GetProperty("display_name").GetString());
        var messages = (await b.GetFromJsonAsync<JsonElement>($"threads/{firstThread}/messages", Guard)).GetProperty("data");
        Assert.Equal(["what is 2 + 2?", "and 3 + 3?"], messages.EnumerateArray().Where(m => m.GetProperty("role").GetString() == "user").Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task An_agent_written_through_one_gateway_is_served_by_another()
    {
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 2, settings: null, Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;

        using var created = await a.PostAsync("agents", Json("""{"name": "shared", "instructions": "Be brief.", "temperature": 0.3}"""), Guard);
        using var readOnB = await b.GetAsync("agents/shared", Guard);
        var seenOnB = await readOnB.Content.ReadFromJsonAsync<JsonElement>(Guard);
        using var patch = new HttpRequestMessage(HttpMethod.Patch, "agents/shared") { Content = Json("""{"maxDepth": 2}""") };
        patch.Headers.TryAddWithoutValidation("If-Match", "\"1\"");
        using var patchedOnB = await b.SendAsync(patch, Guard);
        var seenOnA = await a.GetFromJsonAsync<JsonElement>("agents/shared", Guard);
        using var chatOnB = await b.PostAsJsonAsync("chat", new { message = "what is 2 + 2?", agent = "shared" }, Guard);
        using var deletedOnA = await a.DeleteAsync("agents/shared", Guard);
        using var goneOnB = await b.GetAsync("agents/shared", Guard);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readOnB.StatusCode);
        Assert.Equal("\"1\"", readOnB.Headers.ETag?.Tag);
        Assert.Equal("Be brief.", seenOnB.GetProperty("instructions").GetString());
        Assert.Equal(0.3, seenOnB.GetProperty("temperature").GetDouble());
        Assert.Equal(HttpStatusCode.OK, patchedOnB.StatusCode);
        Assert.Equal(2, seenOnA.GetProperty("maxDepth").GetInt32());
        Assert.Equal(2, seenOnA.GetProperty("version").GetInt64());
        Assert.Equal(HttpStatusCode.OK, chatOnB.StatusCode);
        Assert.Equal("shared", (await chatOnB.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("agent").GetString());
        Assert.Equal(HttpStatusCode.NoContent, deletedOnA.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, goneOnB.StatusCode);
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
