using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway;

/// <summary>Calls for threads that do not exist leave no activation behind, so a flood of made-up ids costs no memory.</summary>
public sealed class GhostThreadTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_flood_of_calls_for_ids_that_name_no_thread_leaves_no_thread_activations()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var real = await client.CreateThreadAsync(cancellationToken: Guard);
        const int Ghosts = 1500;

        var statuses = new HashSet<HttpStatusCode>();
        await Parallel.ForEachAsync(Enumerable.Range(0, Ghosts), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Guard }, async (i, token) =>
        {
            using var response = (i % 3) switch
            {
                0 => await client.PostAsJsonAsync($"/threads/ghost-{i}/messages", new { content = "hi" }, token),
                1 => await client.GetAsync($"/threads/ghost-{i}", token),
                _ => await client.GetAsync($"/threads/ghost-{i}/messages", token),
            };
            lock (statuses)
            {
                statuses.Add(response.StatusCode);
            }
        });

        Assert.Equal([HttpStatusCode.NotFound], statuses);
        // Orleans collects a grain deactivated on idle at once; without that, each would stay for the idle timeout.
        var management = app.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        var threads = await TestTimeouts.EventuallyAsync(
            async () => (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains("ThreadGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount),
            count => count <= 10);
        Assert.True(threads <= 10, $"{threads} thread activations are left after {Ghosts} calls for ids that name no thread.");
        using var stillThere = await client.GetAsync($"/threads/{real}", Guard);
        Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
    }
}
