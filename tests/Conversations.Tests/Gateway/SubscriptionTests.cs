using System.Net;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>Several clients on one thread, and resuming a dropped connection.</summary>
public sealed class SubscriptionTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Two_subscribers_on_one_thread_both_receive_every_event()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"2*21\"}")),
            ScriptedResponse.Text("It ", "is ", "42."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var a = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        using var b = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        var readA = a.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        var readB = b.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        using var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "6*7?" }, Guard);
        var eventsA = await readA;
        var eventsB = await readB;

        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.Equal(eventsA.Select(e => (e.Id, e.Type, e.Data.GetRawText())), eventsB.Select(e => (e.Id, e.Type, e.Data.GetRawText())));
        Assert.Equal(Enumerable.Range(1, eventsA.Count).Select(i => (long)i), eventsA.Select(e => e.Sequence));
        Assert.Contains(eventsA, e => e.Type == "tool_call.completed" && e.Str("result") == "42");
    }

    [Fact]
    public async Task Resume_after_a_dropped_connection_has_no_gap_and_no_duplicate()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text([.. Enumerable.Range(1, 30).Select(i => $"w{i} ")]).WithDelay(TimeSpan.FromMilliseconds(10)));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var all = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        var reference = all.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "count to 30", stream = true }, Guard);
        List<SseEvent> beforeDrop;
        using (response)
        {
            beforeDrop = await response.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta" && e.Str("text") == "w5 ", Guard);
        }

        using var resumed = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: beforeDrop[^1].Id, cancellationToken: Guard);
        var afterDrop = await resumed.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        var expected = await reference;

        var joined = beforeDrop.Concat(afterDrop).ToList();
        Assert.Equal(expected.Select(e => e.Id), joined.Select(e => e.Id));
        Assert.Equal(
            string.Concat(Enumerable.Range(1, 30).Select(i => $"w{i} ")),
            string.Concat(joined.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
    }

    [Fact]
    public async Task Resume_from_the_durable_log_after_the_run_ended_and_with_the_after_query()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("a", "b", "c"), ScriptedResponse.Text("d", "e"));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Streams:TailCapacity"] = "1" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "1" }, Guard))
        using (await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "2" }, Guard))
        {
        }

        using var fromStart = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        var everything = await fromStart.ReadEventsAsync(Guard).ReadUntilAsync(e => SseEvents.IsRunEnd(e) && e.Str("runId") != null && e.Sequence > 10, Guard);
        using var fromMiddle = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=5", cancellationToken: Guard);
        var tail = await fromMiddle.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Id == everything[^1].Id, Guard);

        Assert.Equal(Enumerable.Range(1, everything.Count).Select(i => (long)i), everything.Select(e => e.Sequence));
        Assert.Equal(2, everything.Count(e => e.Type == "run.completed"));
        Assert.Equal(everything.Skip(5).Select(e => e.Id), tail.Select(e => e.Id));
    }

    [Fact]
    public async Task Idle_event_streams_get_heartbeat_comments()
    {
        await using var app = new GatewayApp(new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:00.100" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Guard));
        var line = await reader.ReadLineAsync(Guard);

        Assert.Equal(": heartbeat", line);
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
    }
}
