using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Gateway;

/// <summary>
/// Where a client resumes: <c>Last-Event-ID</c> over <c>?after=</c>, cursors past the end of the stream, cursors in a
/// range a crash skipped, and paging cursors of the message list.
/// </summary>
public sealed class ResumeCursorTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Last_Event_ID_wins_over_the_after_query()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("a", "b", "c", "d", "e"));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "go" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        using var all = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        var everything = await all.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        // An EventSource opened on ?after=1 that saw up to event 3 reconnects to the same URL with the header.
        using var reconnected = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=1", lastEventId: "3", cancellationToken: Guard);
        var resumed = await reconnected.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal(everything.Where(e => e.Sequence > 3).Select(e => e.Id), resumed.Select(e => e.Id));
    }

    [Fact]
    public async Task A_cursor_past_the_last_event_is_400_naming_the_cursor_and_the_last_sequence()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var run = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "what is 17 * 23?", stream = true }, Guard))
        {
            await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        }

        using var stream = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        var last = (await stream.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard))[^1].Sequence;

        using var query = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=500", cancellationToken: Guard);
        using var header = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken: Guard);
        using var justAfter = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after={last + 1}", cancellationToken: Guard);

        await AssertBeyondEndAsync(query, "after", "500", last);
        await AssertBeyondEndAsync(header, "Last-Event-ID", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), last);
        await AssertBeyondEndAsync(justAfter, "after", (last + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), last);
    }

    [Fact]
    public async Task A_cursor_at_the_last_event_gets_the_next_run_from_its_first_event()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        List<SseEvent> first;
        using (var run = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "hi", stream = true }, Guard))
        {
            first = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        }

        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: first[^1].Id, cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.OK, watcher.StatusCode);
        var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        using (await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "again" }, Guard))
        {
        }

        var second = await watched;
        Assert.Equal(first[^1].Sequence + 1, second[0].Sequence);
        Assert.Equal("run.started", second[0].Type);
    }

    [Fact]
    public async Task An_empty_thread_accepts_zero_and_refuses_any_later_cursor()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var zero = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
        using var one = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=1", cancellationToken: Guard);

        Assert.Equal(HttpStatusCode.OK, zero.StatusCode);
        await AssertBeyondEndAsync(one, "after", "1", 0);
    }

    /// <summary>
    /// Embedded in both passes: a gateway process killed after a run, so the numbers its activation had reserved are
    /// skipped by the next one. A cursor inside that range resumes at the next event; one past everything is refused.
    /// </summary>
    [Fact]
    public async Task A_cursor_in_the_range_a_crash_skipped_resumes_at_the_next_event()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var environment = new Dictionary<string, string?> { ["Storage__SqlitePath"] = Path.Combine(directory, "gap.db"), ["DemoModel__TokenDelay"] = "00:00:00" };
        try
        {
            string threadId;
            List<SseEvent> before;
            await using (var node = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                threadId = await node.Client.CreateThreadAsync(cancellationToken: Guard);
                using var run = await node.Client.PostStreamAsync($"threads/{threadId}/messages", new { content = "hi", stream = true }, Guard);
                before = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
                await node.KillAsync();
            }

            await using var restarted = await NodeProcess.StartGatewayAsync(environment, Guard);
            var client = restarted.Client;
            using (var run = await client.PostStreamAsync($"threads/{threadId}/messages", new { content = "again", stream = true }, Guard))
            {
                await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
            }

            using var replay = await client.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: before[^1].Id, cancellationToken: Guard);
            var after = await replay.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
            var gap = before[^1].Sequence + 1;
            Assert.True(after[0].Sequence > gap + 1, $"The restarted thread numbers after the reserved range; its first event is {after[0].Sequence}.");

            using var inGap = await client.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: gap.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken: Guard);
            var fromGap = await inGap.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
            using var beyond = await client.OpenEventStreamAsync($"threads/{threadId}/events?after={after[^1].Sequence + 1}", cancellationToken: Guard);

            Assert.Equal(after.Select(e => e.Id), fromGap.Select(e => e.Id));
            await AssertBeyondEndAsync(beyond, "after", (after[^1].Sequence + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), after[^1].Sequence);
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Fact]
    public async Task An_unknown_paging_cursor_is_400_naming_after_while_the_last_id_gives_an_empty_last_page()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { messages = new[] { new { role = "user", content = "m1" }, new { role = "assistant", content = "m2" } } }, Guard);
        var page = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard);

        using var unknown = await client.GetAsync($"/threads/{threadId}/messages?after=garbage", Guard);
        var atEnd = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages?after={page.GetProperty("lastId").GetString()}", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
        var problem = await unknown.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var message = Assert.Single(problem.GetProperty("errors").GetProperty("after").EnumerateArray()).GetString();
        Assert.Contains("garbage", message, StringComparison.Ordinal);
        Assert.Empty(atEnd.GetProperty("data").EnumerateArray());
        Assert.False(atEnd.GetProperty("hasMore").GetBoolean());
    }

    private static async Task AssertBeyondEndAsync(HttpResponseMessage response, string field, string cursor, long lastSequence)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(lastSequence, problem.GetProperty("lastSequence").GetInt64());
        var message = Assert.Single(problem.GetProperty("errors").GetProperty(field).EnumerateArray()).GetString();
        Assert.Contains(cursor, message, StringComparison.Ordinal);
        Assert.Contains($"last event, {lastSequence}", message, StringComparison.Ordinal);
    }
}
