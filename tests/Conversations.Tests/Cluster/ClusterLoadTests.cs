using System.Text.Json;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Gateway;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster;

/// <summary>Many threads at once across two silos: nothing lost, nothing doubled, order kept.</summary>
public sealed class ClusterLoadTests : PostgresTestBase
{
    private const int Threads = 200;
    private const int MessagesPerThread = 2;

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Two_hundred_threads_driven_concurrently_store_every_message_exactly_once_and_in_order()
    {
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, settings: null, Guard);
        var gateways = cluster.Gateways.Select(g => g.Client).ToArray();

        try
        {
            await RunAsync(cluster, gateways);
        }
        catch
        {
            foreach (var node in cluster.Silos.Concat(cluster.Gateways))
            {
                TestContext.Current.TestOutputHelper?.WriteLine(string.Join('\n', node.Output.Split('\n').Where(l => l.Contains("fail", StringComparison.OrdinalIgnoreCase) || l.Contains("exception", StringComparison.OrdinalIgnoreCase)).Take(5)));
            }

            throw;
        }
    }

    private async Task RunAsync(ClusterProcesses cluster, HttpClient[] gateways)
    {
        var threadIds = await Task.WhenAll(Enumerable.Range(0, Threads).Select(async i =>
        {
            var threadId = await gateways[i % 2].CreateThreadAsync(new { threadId = $"load-{i:D3}" }, Guard);
            for (var m = 1; m <= MessagesPerThread; m++)
            {
                // Alternate gateways: each message of a thread may arrive anywhere.
                using var response = await gateways[(i + m) % 2].PostAsJsonAsync($"threads/{threadId}/messages", new { content = $"{threadId} message {m}" }, Guard);
                var result = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
                Assert.True(result.TryGetProperty("status", out var status) && status.GetString() == "completed", $"{threadId} message {m}: {result}");
            }

            return threadId;
        }));

        await using var database = Fixture.Open();
        var store = new PostgresThreadHistory(database);
        foreach (var threadId in threadIds)
        {
            var messages = await store.ReadMessagesAsync(threadId, 0, 100, Guard);
            var users = messages.Where(m => m.Role == "user").Select(m => m.Content).ToList();
            Assert.Equal(Enumerable.Range(1, MessagesPerThread).Select(m => $"{threadId} message {m}"), users);
            Assert.Equal(Enumerable.Range(1, messages.Count), messages.Select(m => m.Ordinal));
            Assert.Equal(MessagesPerThread, messages.Count(m => m.Role == "assistant" && m.Status == "completed"));
            Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => m.Role));
        }

        // Every thread ran on a silo and none ran on both. (Which silo is Orleans' placement: resource-optimized by
        // default, it may put most or all of them on the less loaded silo, so the test does not insist on both.)
        var ranOn = cluster.Silos.Select(s => threadIds.Where(t => s.Output.Contains($"started on thread {t} ", StringComparison.Ordinal)).ToHashSet()).ToList();
        Assert.Equal(threadIds.Order(), ranOn[0].Union(ranOn[1]).Order());
        Assert.Empty(ranOn[0].Intersect(ranOn[1]));
    }
}
