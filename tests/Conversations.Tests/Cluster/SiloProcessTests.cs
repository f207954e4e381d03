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

    [Fact]
    public async Task A_silo_killed_mid_run_loses_the_thread_to_another_silo_which_fails_the_run_and_takes_new_messages()
    {
        await using var model = await Fakes.FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(Fakes.ScriptedResponse.Text("Half of ", "an answer").HangAfter(3), Fakes.ScriptedResponse.Text("Fresh answer."));
        var modelSettings = new Dictionary<string, string?>
        {
            ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-test",
            ["OPENAI_MODEL"] = "fake-model",
            ["OpenAI__MaxRetries"] = "0",
            ["Cluster__LeaseTtl"] = "00:00:02",
        };
        await using var a = await NodeProcess.StartSiloAsync(SiloEnvironment("silo-a", modelSettings), Guard);
        await using var b = await NodeProcess.StartSiloAsync(SiloEnvironment("silo-b", modelSettings), Guard);
        a.Client.DefaultRequestHeaders.Add("X-Cluster-Key", Key);
        b.Client.DefaultRequestHeaders.Add("X-Cluster-Key", Key);
        using (await a.Client.PostAsJsonAsync("internal/threads/t3/calls/create", new { }, Guard))
        using (var events = await a.Client.OpenEventStreamAsync("internal/threads/t3/events?after=0", cancellationToken: Guard))
        {
            using var sent = await a.Client.PostAsJsonAsync("internal/threads/t3/calls/send", new { content = "go" }, Guard);
            Assert.Equal("accepted", (await sent.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("kind").GetString());
            await events.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "an answer", Guard);
        }

        var killedAt = TimeProvider.System.GetTimestamp();
        await a.KillAsync();

        await using var database = Fixture.Open();
        var log = new PostgresEventLog(database);
        Conversations.Grains.Abstractions.Events.RunFailed? failed = null;
        while (failed is null)
        {
            await Task.Delay(100, Guard);
            await foreach (var stored in log.ReadAsync("t3", 0, cancellationToken: Guard))
            {
                failed ??= stored as Conversations.Grains.Abstractions.Events.RunFailed;
            }
        }

        var takeover = TimeProvider.System.GetElapsedTime(killedAt);
        TestContext.Current.TestOutputHelper?.WriteLine($"run.failed stored {takeover.TotalMilliseconds:0} ms after SIGKILL (lease TTL 2 s)");
        Assert.Equal("interrupted", failed.Error.Code);
        Assert.Equal("silo-b", (await new PostgresThreadLeaseStore(database).GetOwnerAsync("t3", Guard))?.SiloId);
        var messages = await b.Client.PostAsJsonAsync("internal/threads/t3/calls/messages", new { limit = 10 }, Guard);
        var page = await messages.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(["go"], page.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        using var again = await b.Client.PostAsJsonAsync("internal/threads/t3/calls/send", new { content = "again" }, Guard);
        Assert.Equal("accepted", (await again.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("kind").GetString());
    }

    private Dictionary<string, string?> SiloEnvironment(string siloId, IDictionary<string, string?>? extra = null)
    {
        var environment = SiloEnvironment(siloId);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            environment[key] = value;
        }

        return environment;
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
