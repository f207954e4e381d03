using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>The runs of a thread: listed, and each one's stream joined on its own.</summary>
public sealed class RunsApiTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Runs_are_listed_newest_first_with_queued_runs_on_top_and_paged()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("a"), ScriptedResponse.Text("b"), ScriptedResponse.Text("c").HoldAfter(1, release.Task), ScriptedResponse.Text("d"));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        var runIds = new List<string>();
        foreach (var content in new[] { "one", "two" })
        {
            using var done = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content }, Guard);
            runIds.Add((await done.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!);
        }

        runIds.Add(await SendWithoutWaitingAsync(client, threadId, "three", strategy: null));
        await model.WaitForRequestAsync(3, Guard);
        runIds.Add(await SendWithoutWaitingAsync(client, threadId, "four", strategy: "enqueue"));

        var all = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs", Guard);
        var first = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs?limit=3", Guard);
        var rest = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs?limit=3&offset=3", Guard);
        using var badLimit = await client.GetAsync($"/threads/{threadId}/runs?limit=0", Guard);
        using var missing = await client.GetAsync("/threads/thread_missing/runs", Guard);
        release.SetResult();

        Assert.Equal(
            [(runIds[3], "queued"), (runIds[2], "running"), (runIds[1], "completed"), (runIds[0], "completed")],
            all.GetProperty("data").EnumerateArray().Select(r => (r.GetProperty("id").GetString(), r.GetProperty("status").GetString())));
        Assert.False(all.GetProperty("hasMore").GetBoolean());
        Assert.Equal(runIds.AsEnumerable().Reverse().Take(3), first.GetProperty("data").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        Assert.True(first.GetProperty("hasMore").GetBoolean());
        Assert.Equal([runIds[0]], rest.GetProperty("data").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        Assert.False(rest.GetProperty("hasMore").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task A_runs_stream_replays_it_from_its_start_then_goes_live_and_ends_with_it()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("done"), ScriptedResponse.Text("live ", "answer").HoldAfter(2, release.Task));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var done = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "first" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }

        var runs = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs", Guard);
        var endedRunId = runs.GetProperty("data")[0].GetProperty("id").GetString()!;
        var liveRunId = await SendWithoutWaitingAsync(client, threadId, "second", strategy: null);
        await model.WaitForRequestAsync(2, Guard);

        // An ended run: its events only, from run.started to its end, and the stream ends.
        using var ended = await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{endedRunId}/events", cancellationToken: Guard);
        var endedEvents = await ended.ReadEventsAsync(Guard).ToListAsync(Guard);
        // The live run: what it did so far, then live once the model goes on, then the end.
        using var live = await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{liveRunId}/events", cancellationToken: Guard);
        await using var liveEvents = live.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        var seen = new List<SseEvent>();
        while (await liveEvents.MoveNextAsync())
        {
            seen.Add(liveEvents.Current);
            if (liveEvents.Current.Type == "text.delta")
            {
                release.TrySetResult();
            }
        }

        Assert.Equal("run.started", endedEvents[0].Type);
        Assert.Equal("run.completed", endedEvents[^1].Type);
        Assert.All(endedEvents, e => Assert.Equal(endedRunId, e.Str("runId")));
        Assert.Equal("run.started", seen[0].Type);
        Assert.Equal("run.completed", seen[^1].Type);
        Assert.All(seen, e => Assert.Equal(liveRunId, e.Str("runId")));
        Assert.Equal("live answer", string.Concat(seen.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
        Assert.Equal(seen.Select(e => e.Sequence).Order(), seen.Select(e => e.Sequence));

        // Resumed after an event: the rest only.
        using var resumed = await client.OpenEventStreamAsync($"/threads/{threadId}/runs/{liveRunId}/events", seen[1].Id, Guard);
        var resumedEvents = await resumed.ReadEventsAsync(Guard).ToListAsync(Guard);
        Assert.Equal(seen.Skip(2).Select(e => e.Sequence), resumedEvents.Select(e => e.Sequence));

        using var unknown = await client.GetAsync($"/threads/{threadId}/runs/run_missing/events", Guard);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    private static async Task<string> SendWithoutWaitingAsync(HttpClient client, string threadId, string content, string? strategy)
    {
        using var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content, wait = false, multitaskStrategy = strategy }, Guard);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
    }
}
