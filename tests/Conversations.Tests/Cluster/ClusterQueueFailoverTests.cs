using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Conversations.Tests.Gateway.Agents;
using Conversations.Tests.Postgres;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Cluster;

/// <summary>
/// The multitask queue and a steer across a silo's death (real processes: two silos, two gateways, PostgreSQL): the
/// silo hosting the thread is SIGKILLed while a run is mid-flight, with runs queued, a steer waiting or a queued run
/// cancelled. Every accepted message is answered once, in its turn; nothing cancelled comes back.
/// </summary>
public sealed class ClusterQueueFailoverTests : PostgresTestBase
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Runs_queued_behind_a_run_whose_silo_is_killed_run_after_it_in_order_each_once()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.Text("A ", "half").HangAfter(3),
            ScriptedResponse.Text("A, resumed."),
            ScriptedResponse.Text("B answered."),
            ScriptedResponse.Text("C answered."));
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, ModelSettings(model), Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
        var ends = 0;
        using var watcher = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(e => SseEvents.IsRunEnd(e) && ++ends == 3, Guard);

        using var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "a", stream = true }, Guard);
        var started = await sender.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "half", Guard);
        var runA = started[0].Str("runId")!;
        var queuedB = await SendAsync(b, threadId, "b", "enqueue");
        var queuedC = await SendAsync(a, threadId, "c", "enqueue");
        Assert.Equal((HttpStatusCode.Accepted, "queued"), (queuedB.Status, queuedB.Body.Str("status")));
        Assert.Equal((HttpStatusCode.Accepted, "queued"), (queuedC.Status, queuedC.Body.Str("status")));
        var runB = queuedB.Body.Str("runId")!;
        var runC = queuedC.Body.Str("runId")!;

        var killedAt = await KillHostAsync(cluster, threadId);
        var events = await watched;
        Log($"runs A, B, C ended at the other gateway's watcher {TimeProvider.System.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after SIGKILL; {model.Requests.Count} model calls");

        // A went on from its lost model call (retried once, as the README says), then B and C in the order sent.
        Assert.Equal([runA, runB, runC], events.Where(SseEvents.IsRunEnd).Select(e => e.Str("runId")));
        Assert.All(events.Where(SseEvents.IsRunEnd), e => Assert.Equal("run.completed", e.Type));
        Assert.Contains(events, e => e.Type == "agent.status" && e.Str("status") == "resuming" && e.Str("runId") == runA);
        Assert.Equal([runA, runB, runC], events.Where(e => e.Type == "run.started").Select(e => e.Str("runId")));
        Assert.Equal(events.Select(e => e.Sequence).Order(), events.Select(e => e.Sequence));
        Assert.Equal(events.Count, events.Select(e => e.Sequence).Distinct().Count());

        // One model call per run, and the lost one's retry: each asked about its own message, in turn.
        Assert.Equal(["a", "a", "b", "c"], model.Requests.Select(LastUserContent));
        var messages = await MessagesAsync(a, threadId);
        Assert.Equal(
            [("user", "a"), ("assistant", "A, resumed."), ("user", "b"), ("assistant", "B answered."), ("user", "c"), ("assistant", "C answered.")],
            messages.Select(m => (m.Str("role"), m.Str("content"))));
        Assert.Equal([queuedB.Body.Str("userMessageId"), queuedC.Body.Str("userMessageId")], messages.Where(m => m.Str("role") == "user").Skip(1).Select(m => m.Str("id")));

        var runs = await RunsAsync(b, threadId);
        Assert.Equal([(runC, "completed"), (runB, "completed"), (runA, "completed")], runs.Select(r => (r.Str("id"), r.Str("status"))));
    }

    [Fact]
    public async Task A_steer_accepted_during_a_tool_call_whose_silo_is_killed_joins_the_resumed_run_once_and_the_tool_ran_once()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_order", "place_order", """{"item":"book"}""")),
            ScriptedResponse.Text("The order was cut off; make it two, noted."),
            ScriptedResponse.Text("An answer nobody should ask for."));
        var settings = ModelSettings(model);
        // A side-effecting tool (a POST, never retried) that takes longer than the test: the silo dies during it.
        settings["Tools__Http__place_order__Description"] = "Places an order.";
        settings["Tools__Http__place_order__Url"] = service.BaseUrl + "/slow";
        settings["Tools__Http__place_order__Method"] = "POST";
        settings["Tools__Http__place_order__Timeout"] = "00:10:00";
        settings["Tools__Http__place_order__Parameters"] = """{"type":"object","properties":{"item":{"type":"string"}},"required":["item"]}""";
        settings["Agents__default__Tools__2"] = "place_order";
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, settings, Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
        using var watcher = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        using var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "order a book", stream = true }, Guard);
        var started = await sender.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "tool_call.started", Guard);
        var runId = started[0].Str("runId")!;
        await TestTimeouts.EventuallyAsync(() => Task.FromResult(service.Requests.Count), count => count > 0);
        Assert.Single(service.Requests);
        var steer = await SendAsync(b, threadId, "make it two", "steer");
        Assert.Equal(HttpStatusCode.Accepted, steer.Status);
        Assert.True(steer.Body.GetProperty("steered").GetBoolean());
        Assert.Equal(runId, steer.Body.Str("runId"));

        var killedAt = await KillHostAsync(cluster, threadId);
        var events = await watched;
        var runs = await TestTimeouts.EventuallyAsync(() => RunsAsync(a, threadId), list => list.All(r => r.Str("status") is "completed" or "failed" or "cancelled"));
        Log($"the steered run ended at the other gateway's watcher {TimeProvider.System.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after SIGKILL; {model.Requests.Count} model calls, {service.Requests.Count} tool calls");

        // The run resumed on the live silo; the steer joined it (stored once, announced once) at its next model call,
        // the first after the cut-off tool call, which was not run again.
        Assert.Equal((runId, "run.completed"), (events[^1].Str("runId"), events[^1].Type));
        Assert.Contains(events, e => e.Type == "agent.status" && e.Str("status") == "resuming");
        Assert.Equal(steer.Body.Str("userMessageId"), Assert.Single(events, e => e.Type == "run.steered").Str("messageId"));
        Assert.Single(service.Requests);
        Assert.Equal(2, model.Requests.Count);
        var resumedCall = model.Requests[1].Messages;
        Assert.Contains(resumedCall, m => m?["role"]?.ToString() == "tool" && m["tool_call_id"]?.ToString() == "call_order");
        Assert.Equal("make it two", LastUserContent(model.Requests[1]));
        Assert.Equal(runId, Assert.Single(runs).Str("id"));
        Assert.Equal("completed", runs[0].Str("status"));
        var messages = await MessagesAsync(b, threadId);
        var turns = messages.Select(m => (m.Str("role"), m.Str("content"))).ToList();
        Assert.Equal(("user", "order a book"), turns[0]);
        Assert.Equal("assistant", turns[1].Item1);
        Assert.Equal([("user", "make it two"), ("assistant", "The order was cut off; make it two, noted.")], turns.Skip(2));
        Assert.Equal("call_order", messages[1].GetProperty("toolCalls")[0].Str("id"));
    }

    [Fact]
    public async Task A_queued_run_cancelled_before_its_silo_is_killed_stays_cancelled_and_never_runs()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.Text("A ", "half").HangAfter(3),
            ScriptedResponse.Text("A, resumed."),
            ScriptedResponse.Text("C answered."),
            ScriptedResponse.Text("An answer nobody should ask for."));
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 2, gateways: 2, ModelSettings(model), Guard);
        var a = cluster.Gateways[0].Client;
        var b = cluster.Gateways[1].Client;
        var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
        var ends = 0;
        using var watcher = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        // A, B (cancelled while queued) and C end.
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(e => SseEvents.IsRunEnd(e) && ++ends == 3, Guard);

        using var sender = await a.PostStreamAsync($"threads/{threadId}/messages", new { content = "a", stream = true }, Guard);
        var started = await sender.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "half", Guard);
        var runA = started[0].Str("runId")!;
        var queuedB = await SendAsync(a, threadId, "b", "enqueue");
        var queuedC = await SendAsync(a, threadId, "c", "enqueue");
        var runB = queuedB.Body.Str("runId")!;
        var runC = queuedC.Body.Str("runId")!;
        using var cancel = await b.PostAsync($"threads/{threadId}/runs/{runB}/cancel", null, Guard);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("cancelled", (await cancel.JsonAsync(Guard)).Str("status"));

        var killedAt = await KillHostAsync(cluster, threadId);
        var events = await watched;
        Log($"runs A and C ended at the other gateway's watcher {TimeProvider.System.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after SIGKILL; {model.Requests.Count} model calls");

        // C ran after A: had B come back to the queue, it would have run before C. It never started.
        Assert.Equal([(runB, "run.cancelled"), (runA, "run.completed"), (runC, "run.completed")], events.Where(SseEvents.IsRunEnd).Select(e => (e.Str("runId"), e.Type)));
        Assert.Equal([runA, runC], events.Where(e => e.Type == "run.started").Select(e => e.Str("runId")));
        Assert.Equal(["a", "a", "c"], model.Requests.Select(LastUserContent));
        var messages = await MessagesAsync(a, threadId);
        Assert.Equal(
            [("user", "a"), ("assistant", "A, resumed."), ("user", "c"), ("assistant", "C answered.")],
            messages.Select(m => (m.Str("role"), m.Str("content"))));
        var run = await b.GetFromJsonAsync<JsonElement>($"threads/{threadId}/runs/{runB}", Guard);
        Assert.Equal("cancelled", run.Str("status"));
        var runs = await RunsAsync(a, threadId);
        Assert.Equal(
            new[] { (runA, "completed"), (runB, "cancelled"), (runC, "completed") }.Order(),
            runs.Select(r => (r.Str("id")!, r.Str("status")!)).Order());
    }

    /// <summary>SIGKILLs the silo whose log says it started a run on the thread (it hosts the thread's activation); the other lives on.</summary>
    private static async Task<long> KillHostAsync(ClusterProcesses cluster, string threadId)
    {
        NodeProcess victim = cluster.Silos.Single(s => s.Output.Contains($"started on thread {threadId}", StringComparison.Ordinal));
        var killedAt = TimeProvider.System.GetTimestamp();
        await victim.KillAsync();
        return killedAt;
    }

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static string? LastUserContent(RecordedRequest request) =>
        request.Messages.LastOrDefault(m => m?["role"]?.ToString() == "user")?["content"]?.ToString();

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient client, string threadId, string content, string strategy)
    {
        using var response = await client.PostAsJsonAsync(
            $"threads/{threadId}/messages", new { content, wait = false, multitaskStrategy = strategy }, Guard);
        return (response.StatusCode, await response.JsonAsync(Guard));
    }

    private static async Task<List<JsonElement>> MessagesAsync(HttpClient client, string threadId) =>
        [.. (await client.GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages?limit=100", Guard)).GetProperty("data").EnumerateArray()];

    private static async Task<List<JsonElement>> RunsAsync(HttpClient client, string threadId) =>
        [.. (await client.GetFromJsonAsync<JsonElement>($"threads/{threadId}/runs?limit=100", Guard)).GetProperty("data").EnumerateArray()];

    private static Dictionary<string, string?> ModelSettings(FakeOpenAiServer model) => new()
    {
        ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
        ["OPENAI_API_KEY"] = "sk-test",
        ["OPENAI_MODEL"] = "fake-model",
        ["OpenAI__MaxRetries"] = "0",
    };
}
