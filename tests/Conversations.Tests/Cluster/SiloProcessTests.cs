using System.Net;
using System.Text.Json;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Gateway;
using Conversations.Tests.Postgres;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Cluster;

/// <summary>A silo as a real process on real PostgreSQL, driven through its internal endpoints.</summary>
public sealed class SiloProcessTests : PostgresTestBase
{
    private const string Key = "test-cluster-key-0123456789";

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_silo_takes_the_thread_lease_runs_the_agent_and_serves_the_live_events()
    {
        await using var silo = await NodeProcess.StartSiloAsync(SiloEnvironment("silo-a"), Guard);
        silo.Client.DefaultRequestHeaders.Add("X-Cluster-Key", Key);

        using var created = await silo.Client.PostAsJsonAsync("internal/threads/t1/calls/create", new { }, Guard);
        using var events = await silo.Client.OpenEventStreamAsync("internal/threads/t1/events?after=0", cancellationToken: Guard);
        var reading = events.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        using var sent = await silo.Client.PostAsJsonAsync("internal/threads/t1/calls/send", new { content = "what is 17 * 23?" }, Guard);
        var result = await sent.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var streamed = await reading;

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.Equal("accepted", result.GetProperty("kind").GetString());
        Assert.Equal("run.completed", streamed[^1].Type);
        Assert.Contains(streamed, e => e.Type == "tool_call.completed" && e.Str("result") == "391");
        await using var database = Fixture.Open();
        var owner = await new PostgresThreadLeaseStore(database).GetOwnerAsync("t1", Guard);
        Assert.Equal("silo-a", owner?.SiloId);
        var stored = await new PostgresEventLog(database).GetLastSequenceAsync("t1", Guard);
        Assert.Equal(streamed[^1].Sequence, stored);
        var silos = await new PostgresSiloDirectory(database).ListActiveAsync(TimeSpan.FromSeconds(30), Guard);
        Assert.Equal(silo.BaseAddress.ToString(), Assert.Single(silos).Address);
    }

    [Fact]
    public async Task Internal_calls_need_the_cluster_key_and_a_second_silo_redirects_to_the_owner()
    {
        await using var a = await NodeProcess.StartSiloAsync(SiloEnvironment("silo-a"), Guard);
        await using var b = await NodeProcess.StartSiloAsync(SiloEnvironment("silo-b"), Guard);

        using var noKey = await a.Client.PostAsJsonAsync("internal/threads/t2/calls/create", new { }, Guard);
        a.Client.DefaultRequestHeaders.Add("X-Cluster-Key", Key);
        b.Client.DefaultRequestHeaders.Add("X-Cluster-Key", Key);
        using var created = await a.Client.PostAsJsonAsync("internal/threads/t2/calls/create", new { }, Guard);
        using var misdirected = await b.Client.PostAsJsonAsync("internal/threads/t2/calls/get", new { }, Guard);
        using var eventsAtB = await b.Client.GetAsync("internal/threads/t2/events?after=0", Guard);

        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, misdirected.StatusCode);
        var redirect = await misdirected.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal("silo-a", redirect.GetProperty("ownerSiloId").GetString());
        Assert.Equal(a.BaseAddress.ToString(), redirect.GetProperty("ownerAddress").GetString());
        Assert.Equal(HttpStatusCode.MisdirectedRequest, eventsAtB.StatusCode);
    }

    private Dictionary<string, string?> SiloEnvironment(string siloId) => new()
    {
        ["Cluster__PostgresConnectionString"] = Fixture.ConnectionString,
        ["Cluster__Schema"] = Fixture.Schema,
        ["Cluster__ClusterKey"] = Key,
        ["Cluster__SiloId"] = siloId,
        ["DemoModel__TokenDelay"] = "00:00:00",
    };
}
