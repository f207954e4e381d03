using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>A thread may pin an agent at creation: its runs use it unless a message names another.</summary>
public sealed class PinnedAgentTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Messages_that_name_no_agent_run_the_pinned_one_and_a_named_agent_still_wins()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Aye."), ScriptedResponse.Text("Yes."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Agents:pirate:Instructions"] = "Answer as a pirate." });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { agent = "pirate" }, Guard);
        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);

        using var pinned = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "Hello?" }, Guard);
        var pinnedRun = await pinned.Content.ReadFromJsonAsync<JsonElement>(Guard);
        using var named = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "Hello again?", agent = "default" }, Guard);
        var namedRun = await named.Content.ReadFromJsonAsync<JsonElement>(Guard);
        using var unknown = await client.PostAsJsonAsync("/threads", new { agent = "nobody" }, Guard);

        Assert.Equal("pirate", thread.GetProperty("agent").GetString());
        Assert.Equal("pirate", (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{pinnedRun.GetProperty("runId").GetString()}", Guard)).GetProperty("agent").GetString());
        Assert.Equal("default", (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{namedRun.GetProperty("runId").GetString()}", Guard)).GetProperty("agent").GetString());
        Assert.Equal("Answer as a pirate.", model.Requests[0].Messages[0]?["content"]?.ToString());
        Assert.NotEqual("Answer as a pirate.", model.Requests[1].Messages[0]?["content"]?.ToString());
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.True((await unknown.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors").TryGetProperty("agent", out _));
    }
}
