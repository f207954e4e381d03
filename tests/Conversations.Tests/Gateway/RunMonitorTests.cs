using Conversations.Grains.Abstractions.Monitoring;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway;

/// <summary>Thread grains report their runs on Orleans streams to the per-silo run monitor the ops features read.</summary>
public sealed class RunMonitorTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_silos_monitor_counts_its_runs_outcomes_and_tokens()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "what is 17 * 23?" }, Guard))
        {
            response.EnsureSuccessStatusCode();
        }

        var grains = app.Services.GetRequiredService<IGrainFactory>();
#pragma warning disable xUnit1051 // IManagementGrain takes no token; WaitAsync bounds the call.
        var silo = Assert.Single((await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(Guard)).Keys);
#pragma warning restore xUnit1051
        var monitor = grains.GetGrain<IRunMonitorGrain>(silo.ToString());
        RunMonitorSnapshot snapshot;
        // Stream delivery polls (memory streams): the run's end arrives a little after the run.
        while ((snapshot = await monitor.GetSnapshotAsync(Guard)).Completed == 0)
        {
            await Task.Delay(50, Guard);
        }

        Assert.Equal(1, snapshot.Started);
        Assert.Equal(1, snapshot.Completed);
        Assert.Equal(0, snapshot.Failed);
        Assert.Empty(snapshot.ActiveRuns);
        Assert.True(snapshot.CompletionTokens > 0, "the demo model reports usage");
        Assert.Empty(snapshot.RecentFailures);
    }
}
