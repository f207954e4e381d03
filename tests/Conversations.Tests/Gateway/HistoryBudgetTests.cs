using System.Net;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>The agent's history budget reaches the model calls of real runs; the stored history stays whole.</summary>
public sealed class HistoryBudgetTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_run_sends_the_model_only_the_newest_turns_that_fit_the_agents_budget()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Short answer."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Agents:default:HistoryBudget"] = "200" });
        var client = app.Client;
        var old = string.Concat(Enumerable.Repeat("an old and long turn ", 40)); // ~200 tokens each
        var threadId = await client.CreateThreadAsync(
            new { messages = new[] { new { role = "user", content = "FIRST " + old }, new { role = "assistant", content = "SECOND " + old } } },
            Guard);

        using var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "The newest question." }, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(model.Requests).Messages.Select(m => m?["content"]?.ToString() ?? "").ToList();
        Assert.Contains("The newest question.", sent);
        Assert.DoesNotContain(sent, c => c.StartsWith("FIRST", StringComparison.Ordinal));
        var stored = await client.GetStringAsync($"/threads/{threadId}/messages", Guard);
        Assert.Contains("FIRST", stored, StringComparison.Ordinal); // only what the model is sent is trimmed
    }
}
