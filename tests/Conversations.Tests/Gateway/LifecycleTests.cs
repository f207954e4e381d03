using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Processes;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway;

/// <summary>History outlives activations and processes.</summary>
public sealed class LifecycleTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Deactivation_after_idle_and_reactivation_keep_history_and_event_numbering()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("first answer"), ScriptedResponse.Text("second answer"));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Runtime:IdleTimeout"] = "00:00:00.200" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { metadata = new { owner = "ana" } }, Guard);
        using var firstRun = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "one", stream = true }, Guard);
        var firstEvents = await firstRun.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        var management = app.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
#pragma warning disable xUnit1051 // IManagementGrain takes no token; WaitAsync bounds the call.
        while ((await management.GetSimpleGrainStatistics().WaitAsync(Guard)).Any(s => s.GrainType.Contains("ThreadGrain", StringComparison.Ordinal) && s.ActivationCount > 0))
        {
            await Task.Delay(50, Guard);
        }
#pragma warning restore xUnit1051

        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        Assert.Equal("ana", thread.GetProperty("metadata").GetProperty("owner").GetString());
        Assert.Equal(2, thread.GetProperty("messageCount").GetInt32());
        using var secondRun = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "two", stream = true }, Guard);
        var secondEvents = await secondRun.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(firstEvents[^1].Sequence + 1, secondEvents[0].Sequence);
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["one", "first answer", "two", "second answer"], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        // The model saw the history read back from storage.
        Assert.Equal(["one", "first answer", "two"], model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() != "system").Select(m => m!["content"]!.GetValue<string>()));
    }

    /// <summary>
    /// Embedded in both passes: a gateway process (not a <see cref="GatewayApp"/>) with its co-hosted silo and SQLite
    /// file, killed and started again. Killing cluster processes is tested in Conversations.Tests.Cluster.
    /// </summary>
    [Fact]
    public async Task Restarting_the_whole_process_keeps_history_and_events()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var environment = new Dictionary<string, string?> { ["Storage__SqlitePath"] = Path.Combine(directory, "restart.db"), ["DemoModel__TokenDelay"] = "00:00:00" };
        try
        {
            string threadId;
            List<SseEvent> before;
            await using (var node = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                threadId = await node.Client.CreateThreadAsync(cancellationToken: Guard);
                using var run = await node.Client.PostStreamAsync($"threads/{threadId}/messages", new { content = "what is 6 * 7?", stream = true }, Guard);
                before = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
                Assert.Contains("demo model", node.Output, StringComparison.Ordinal);

                // A SIGKILL: nothing gets a chance to flush on the way out. Every event a client has seen was
                // durable before it was delivered.
                await node.KillAsync();
            }

            await using var restarted = await NodeProcess.StartGatewayAsync(environment, Guard);
            var messages = (await restarted.Client.GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages", Guard)).GetProperty("data").EnumerateArray().ToList();
            Assert.Equal("what is 6 * 7?", messages[0].GetProperty("content").GetString());
            Assert.Contains("42", messages[^1].GetProperty("content").GetString(), StringComparison.Ordinal);
            Assert.Contains(messages, m => m.GetProperty("role").GetString() == "tool" && m.GetProperty("content").GetString() == "42");
            using var replay = await restarted.Client.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
            var after = await replay.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Id == before[^1].Id, Guard);
            Assert.Equal(before.Select(e => (e.Id, e.Type)), after.Select(e => (e.Id, e.Type)));
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }
}
