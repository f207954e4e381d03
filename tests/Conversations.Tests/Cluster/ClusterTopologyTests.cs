using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster;

/// <summary>Two silos and two gateways as real processes on real PostgreSQL: the cluster behaves as one server.</summary>
public sealed class ClusterTopologyTests : PostgresTestBase
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_client_on_gateway_B_watches_a_run_started_through_gateway_A_and_resumes_on_A_after_a_disconnect()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"17 * 23\"}")),
            ScriptedResponse.Text([.. Enumerable.Range(1, 20).Select(i => $"t{i} ")]).WithDelay(TimeSpan.FromMilliseconds(20)));
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, ModelSettings(model), Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);

        using var watcherAtB = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        var watchedAtB = watcherAtB.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        List<SseEvent> beforeDrop;
        using (var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "17 * 23, then count", stream = true }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sender.StatusCode);
            beforeDrop = await sender.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "t5 ", Guard);
        }

        using var resumed = await a.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: beforeDrop[^1].Id, cancellationToken: Guard);
        var afterDrop = await resumed.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        var atB = await watchedAtB;

        var joined = beforeDrop.Concat(afterDrop).ToList();
        Assert.Equal(atB.Select(e => e.Id), joined.Select(e => e.Id));
        Assert.Equal(Enumerable.Range(1, atB.Count).Select(i => (long)i), atB.Select(e => e.Sequence));
        Assert.Contains(atB, e => e.Type == "tool_call.completed" && e.Str("result") == "391");
        Assert.Equal("run.completed", atB[^1].Type);
        var messages = (await b.GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages?limit=100", Guard)).GetProperty("data");
        Assert.Equal(string.Concat(Enumerable.Range(1, 20).Select(i => $"t{i} ")), messages[messages.GetArrayLength() - 1].GetProperty("content").GetString());
        var health = await b.GetFromJsonAsync<JsonElement>("health/ready", Guard);
        Assert.Equal("ready", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Killing_the_silo_that_runs_a_thread_resumes_the_run_for_watchers_on_every_gateway_and_the_thread_goes_on()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_mul", "calculate", """{"expression":"17*23"}""")),
            ScriptedResponse.Text("Half ", "an answer").HangAfter(3),
            ScriptedResponse.Text("391, resumed."),
            ScriptedResponse.Text("Fresh answer."));
        var settings = ModelSettings(model);
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, settings, Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
        using var watcherA = await a.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        using var watcherB = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        var seenAtA = watcherA.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        var seenAtB = watcherB.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        using var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "17 * 23?", stream = true }, Guard);
        await sender.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "an answer", Guard);

        // The silo whose log says it started the run hosts the thread's activation.
        var victim = cluster.Silos.Single(s => s.Output.Contains($"started on thread {threadId}", StringComparison.Ordinal));
        var killedAt = TimeProvider.System.GetTimestamp();
        await victim.KillAsync();
        var atA = await seenAtA;
        var atB = await seenAtB;
        TestContext.Current.TestOutputHelper?.WriteLine($"watchers saw the resumed run end {TimeProvider.System.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after SIGKILL");

        // Both watchers: the same events, the run resumed on the live silo, the tool run once, the run completed.
        Assert.Equal(atA.Select(e => e.Id), atB.Select(e => e.Id));
        Assert.Contains(atA, e => e.Type == "agent.status" && e.Str("status") == "resuming");
        Assert.Single(atA, e => e.Type == "tool_call.completed");
        Assert.Equal("run.completed", atA[^1].Type);
        // Increasing with no duplicate; the new activation numbers after what the dead one had reserved.
        Assert.Equal(atA.Select(e => e.Sequence).Order(), atA.Select(e => e.Sequence));
        Assert.Equal(atA.Count, atA.Select(e => e.Sequence).Distinct().Count());
        Assert.Equal(3, model.Requests.Count); // the resumed run's model call had the recorded tool result
        Assert.Contains(model.Requests[2].Messages, m => m?["role"]?.ToString() == "tool" && m["tool_call_id"]?.ToString() == "call_mul");
        using var next = await b.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "again" }, Guard);
        var result = await next.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal("completed", result.GetProperty("status").GetString());
        Assert.Equal("Fresh answer.", result.GetProperty("message").GetProperty("content").GetString());
        var messages = (await a.GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(
            [("user", "17 * 23?"), ("assistant", ""), ("tool", "391"), ("assistant", "391, resumed."), ("user", "again"), ("assistant", "Fresh answer.")],
            messages.EnumerateArray().Select(m => (m.GetProperty("role").GetString(), m.GetProperty("content").GetString())));
    }

    [Fact]
    public async Task A_client_of_a_killed_gateway_reconnects_to_another_with_Last_Event_ID_and_misses_nothing()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text([.. Enumerable.Range(1, 30).Select(i => $"w{i} ")]).WithDelay(TimeSpan.FromMilliseconds(20)));
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 2, ModelSettings(model), Guard);
        var a = cluster.Gateways[0];
        var b = cluster.Gateways[1].Client;
        var threadId = await a.Client.CreateThreadAsync(cancellationToken: Guard);

        using var sender = await a.Client.PostStreamAsync($"threads/{threadId}/messages", new { content = "count", stream = true }, Guard);
        var received = new List<SseEvent>();
        await using (var events = sender.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard))
        {
            while (await events.MoveNextAsync())
            {
                received.Add(events.Current);
                if (events.Current.Str("text") == "w8 ")
                {
                    await a.KillAsync();
                    break;
                }
            }
        }

        using var resumed = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: received[^1].Id, cancellationToken: Guard);
        received.AddRange(await resumed.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard));

        Assert.Equal(Enumerable.Range(1, received.Count).Select(i => (long)i), received.Select(e => e.Sequence));
        Assert.Equal(string.Concat(Enumerable.Range(1, 30).Select(i => $"w{i} ")), string.Concat(received.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
        Assert.Equal("run.completed", received[^1].Type);
    }

    [Fact]
    public async Task A_cancel_sent_to_the_other_gateway_reaches_the_silo_running_the_thread()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Thinking ", "slowly").HangAfter(3));
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, ModelSettings(model), Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
        using var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "take your time", stream = true }, Guard);
        await using var events = sender.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        string? runId = null;
        while (await events.MoveNextAsync() && events.Current.Str("text") != "slowly")
        {
            runId ??= events.Current.Str("runId");
        }

        using var cancel = await b.PostAsync($"threads/{threadId}/runs/{runId}/cancel", null, Guard);
        var rest = new List<SseEvent>();
        while (await events.MoveNextAsync())
        {
            rest.Add(events.Current);
        }

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("run.cancelled", rest[^1].Type);
        Assert.Equal("cancelled", Assert.Single(rest, e => e.Type == "message.completed").Str("status"));
        var run = await a.GetFromJsonAsync<JsonElement>($"threads/{threadId}/runs/{runId}", Guard);
        Assert.Equal("cancelled", run.GetProperty("status").GetString());
    }

    private static Dictionary<string, string?> ModelSettings(FakeOpenAiServer model) => new()
    {
        ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
        ["OPENAI_API_KEY"] = "sk-test",
        ["OPENAI_MODEL"] = "fake-model",
        ["OpenAI__MaxRetries"] = "0",
    };
}
