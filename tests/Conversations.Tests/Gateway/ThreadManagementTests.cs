using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>A caller's own threads: the listing, metadata edits, erasure and the event log's retention.</summary>
public sealed class ThreadManagementTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static async Task<JsonElement> ListAsync(HttpClient client, string query) =>
        await client.GetFromJsonAsync<JsonElement>($"/threads{query}", Guard);

    private static string[] Ids(JsonElement page) => [.. page.GetProperty("data").EnumerateArray().Select(t => t.GetProperty("id").GetString()!)];

    private static async Task<HttpResponseMessage> PatchAsync(HttpClient client, string path, string json, string mediaType = "application/merge-patch+json")
    {
        using var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return await client.PatchAsync(path, content, Guard);
    }

    [Fact]
    public async Task Threads_are_listed_last_updated_first_in_pages_with_title_preview_and_metadata_filters()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Four, ", "of course."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var alpha = await client.CreateThreadAsync(new { metadata = new { project = "x", title = "Alpha plans" } }, Guard);
        var beta = await client.CreateThreadAsync(
            new { metadata = new { project = "y" }, messages = new[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "Hello   there,\nhow are you?" }, new { role = "assistant", content = "Fine, thanks." } } },
            Guard);
        var gamma = await client.CreateThreadAsync(new { metadata = new { project = "x" } }, Guard);

        // A run moves its thread to the top, with its answer as the preview.
        using (var sent = await client.PostAsJsonAsync($"/threads/{alpha}/messages", new { content = "What is 2 + 2?" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        var all = await ListAsync(client, "");
        Assert.Equal([alpha, gamma, beta], Ids(all));
        Assert.False(all.GetProperty("hasMore").GetBoolean());
        var first = all.GetProperty("data")[0];
        Assert.Equal("Alpha plans", first.GetProperty("title").GetString());
        Assert.Equal("Four, of course.", first.GetProperty("lastMessagePreview").GetString());
        Assert.Equal(2, first.GetProperty("messageCount").GetInt32());
        Assert.Equal("x", first.GetProperty("metadata").GetProperty("project").GetString());
        var b = all.GetProperty("data")[2];
        Assert.Equal("Hello there, how are you?", b.GetProperty("title").GetString());
        Assert.Equal("Fine, thanks.", b.GetProperty("lastMessagePreview").GetString());
        Assert.False(all.GetProperty("data")[1].TryGetProperty("title", out _), "A thread with neither a title nor a user message has no title.");

        var page1 = await ListAsync(client, "?limit=2");
        Assert.Equal([alpha, gamma], Ids(page1));
        Assert.True(page1.GetProperty("hasMore").GetBoolean());
        var page2 = await ListAsync(client, $"?limit=2&after={page1.GetProperty("nextCursor").GetString()}");
        Assert.Equal([beta], Ids(page2));
        Assert.False(page2.GetProperty("hasMore").GetBoolean());
        Assert.False(page2.TryGetProperty("nextCursor", out _), "The last page has no next cursor.");

        Assert.Equal([alpha, gamma], Ids(await ListAsync(client, "?metadata.project=x")));
        Assert.Equal([gamma], Ids(await ListAsync(client, "?metadata.project=x&limit=1&after=" + (await ListAsync(client, "?metadata.project=x&limit=1")).GetProperty("nextCursor").GetString())));
        Assert.Empty(Ids(await ListAsync(client, "?metadata.project=z")));

        using var search = await client.PostAsJsonAsync("/threads/search", new { metadata = new { project = "x" }, limit = 1, offset = 1 }, Guard);
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        var found = await search.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal([gamma], found.EnumerateArray().Select(t => t.GetProperty("id").GetString()));
    }

    [Theory]
    [InlineData("?limit=0", "limit", "limit must be an integer between 1 and 100.")]
    [InlineData("?limit=ten", "limit", "limit must be an integer between 1 and 100.")]
    [InlineData("?after=not-a-cursor", "after", "after must be a cursor a previous page gave as nextCursor.")]
    [InlineData("?after=bm90LWEtY3Vyc29y", "after", "after must be a cursor a previous page gave as nextCursor.")]
    [InlineData("?metadata.=x", "metadata.", "metadata. must be given once, with a key of 1-64 characters and a value of at most 512 characters.")]
    public async Task A_bad_listing_parameter_is_400_naming_it(string query, string field, string message)
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.GetAsync($"/threads{query}", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(message, problem.GetProperty("errors").GetProperty(field)[0].GetString());
    }

    [Fact]
    public async Task Patch_merges_metadata_removes_keys_set_to_null_and_refuses_what_it_cannot_change()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { metadata = new { a = "1", b = "2" } }, Guard);

        using var patched = await PatchAsync(client, $"/threads/{threadId}", """{"metadata": {"b": null, "c": "3", "title": "Renamed"}}""");
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var body = await patched.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(threadId, body.GetProperty("id").GetString());
        var expected = new Dictionary<string, string> { ["a"] = "1", ["c"] = "3", ["title"] = "Renamed" };
        Assert.Equal(expected, body.GetProperty("metadata").Deserialize<Dictionary<string, string>>());
        var read = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        Assert.Equal(expected, read.GetProperty("metadata").Deserialize<Dictionary<string, string>>());
        var listed = (await ListAsync(client, "?metadata.c=3")).GetProperty("data");
        Assert.Equal("Renamed", Assert.Single(listed.EnumerateArray()).GetProperty("title").GetString());
        Assert.Empty(Ids(await ListAsync(client, "?metadata.b=2")));

        using var wrongType = await PatchAsync(client, $"/threads/{threadId}", """{"metadata": {"n": 5}, "agent": "terse"}""", "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        var errors = (await wrongType.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors");
        Assert.Equal("metadata keys must be 1-64 characters and values strings of at most 512 characters (null removes the key).", errors.GetProperty("metadata.n")[0].GetString());
        Assert.Equal("agent cannot be changed: a thread's metadata is all a PATCH changes.", errors.GetProperty("agent")[0].GetString());

        var many = string.Join(", ", Enumerable.Range(1, 14).Select(i => $"\"k{i}\": \"v\""));
        using var tooMany = await PatchAsync(client, $"/threads/{threadId}", "{\"metadata\": {" + many + "}}");
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal(
            "metadata holds at most 16 pairs; with this patch the thread would have 17.",
            (await tooMany.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors").GetProperty("metadata")[0].GetString());

        using var cleared = await PatchAsync(client, $"/threads/{threadId}", """{"metadata": null}""");
        Assert.Empty((await cleared.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("metadata").EnumerateObject());

        using var notJson = await PatchAsync(client, $"/threads/{threadId}", "metadata=x", "text/plain");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, notJson.StatusCode);
        using var unknown = await PatchAsync(client, "/threads/thread_missing", """{"metadata": {"a": "1"}}""");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Delete_during_a_streaming_run_cancels_it_ends_every_stream_and_erases_the_thread_everywhere()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("An earlier answer."), ScriptedResponse.Text("Thinking ", "slowly").HangAfter(2));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { metadata = new { project = "secret" } }, Guard);
        string earlierRunId;
        using (var earlier = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "first" }, Guard))
        {
            earlierRunId = (await earlier.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
        }

        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        await using var watched = watcher.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        using var stream = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "take your time", stream = true }, Guard);
        await using var streamed = stream.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        Assert.True(await streamed.MoveNextAsync());
        var runId = streamed.Current.Str("runId");
        while (await streamed.MoveNextAsync() && streamed.Current.Type != "text.delta")
        {
        }

        // Every place the thread is stored, each holding rows of it now (the active run holds a reminder in cluster mode).
        string[] stored =
        [
            "SELECT COUNT(*) FROM events WHERE thread_id = @id",
            "SELECT COUNT(*) FROM messages WHERE thread_id = @id",
            "SELECT COUNT(*) FROM runs WHERE thread_id = @id",
            "SELECT COUNT(*) FROM thread_index WHERE id = @id",
            app.Topology == GatewayTopology.Cluster
                ? "SELECT COUNT(*) FROM orleansstorage WHERE graintypestring = 'thread' AND grainidextensionstring = @id"
                : "SELECT COUNT(*) FROM grain_state WHERE grain_type = 'thread' AND grain_key = @id",
            .. app.Topology == GatewayTopology.Cluster ? ["SELECT COUNT(*) FROM orleansreminderstable WHERE grainid = 'thread/' || @id"] : Array.Empty<string>(),
        ];
        foreach (var sql in stored)
        {
            Assert.True(await app.QueryStorageAsync(sql, threadId) > 0, $"No rows before the delete: {sql}");
        }

        using (var deleted = await client.DeleteAsync($"/threads/{threadId}", Guard))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        // The streaming send and the watcher both hear the run end cancelled, and then their streams close.
        var rest = new List<SseEvent>();
        while (await streamed.MoveNextAsync())
        {
            rest.Add(streamed.Current);
        }

        Assert.Equal("run.cancelled", rest[^1].Type);
        Assert.Equal("the thread was deleted", rest[^1].Str("reason"));
        var watchedEvents = new List<SseEvent>();
        while (await watched.MoveNextAsync())
        {
            watchedEvents.Add(watched.Current);
        }

        Assert.Equal(("run.cancelled", runId), (watchedEvents[^1].Type, watchedEvents[^1].Str("runId")));
        Assert.True(await model.Requests[1].Aborted.WaitAsync(Guard), "The model request of the cancelled run was aborted.");

        foreach (var path in new[]
        {
            $"/threads/{threadId}", $"/threads/{threadId}/messages", $"/threads/{threadId}/events", $"/threads/{threadId}/runs",
            $"/threads/{threadId}/runs/{runId}", $"/threads/{threadId}/runs/{earlierRunId}", $"/threads/{threadId}/runs/{runId}/events",
        })
        {
            using var gone = await client.GetAsync(path, Guard);
            Assert.True(gone.StatusCode == HttpStatusCode.NotFound, $"GET {path} answered {(int)gone.StatusCode}, not 404.");
        }

        using (var again = await client.DeleteAsync($"/threads/{threadId}", Guard))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }

        using (var send = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "still there?" }, Guard))
        {
            Assert.Equal(HttpStatusCode.NotFound, send.StatusCode);
        }

        Assert.Empty(Ids(await ListAsync(client, "")));
        foreach (var sql in stored)
        {
            Assert.True(await app.QueryStorageAsync(sql, threadId) == 0, $"Rows left after the delete: {sql}");
        }
    }

    [Fact]
    public async Task Delete_cancels_queued_runs_and_the_id_may_then_name_a_new_empty_thread()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        const string threadId = "thread_reused";
        await client.CreateThreadAsync(new { threadId }, Guard);
        using (var running = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "one", wait = false }, Guard))
        {
            Assert.Equal(HttpStatusCode.Accepted, running.StatusCode);
        }

        using var queuedStream = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "two", stream = true, multitaskStrategy = "enqueue" }, Guard);
        var queued = await queuedStream.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "run.queued", Guard);
        var queuedRunId = queued[^1].Str("runId");
        using (var third = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "three", wait = false, multitaskStrategy = "enqueue" }, Guard))
        {
            Assert.Equal("queued", (await third.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("status").GetString());
        }

        using (var deleted = await client.DeleteAsync($"/threads/{threadId}", Guard))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        // The queued run's stream hears it was cancelled (it never started) and ends.
        var rest = await queuedStream.ReadEventsAsync(Guard).ToListAsync(Guard);
        Assert.Equal(("run.cancelled", queuedRunId), (rest[^1].Type, rest[^1].Str("runId")));
        Assert.DoesNotContain(rest, e => e.Type == "run.started");
        Assert.Equal(0, await app.QueryStorageAsync("SELECT COUNT(*) FROM runs WHERE thread_id = @id", threadId));

        // A new thread may take the id: it starts empty, its events from 1.
        using (var created = await client.PostAsJsonAsync("/threads", new { threadId, metadata = new { fresh = "yes" } }, Guard))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var thread = await created.Content.ReadFromJsonAsync<JsonElement>(Guard);
            Assert.Equal(0, thread.GetProperty("messageCount").GetInt32());
            Assert.Empty(thread.GetProperty("queuedRunIds").EnumerateArray());
        }

        Assert.Empty((await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs", Guard)).GetProperty("data").EnumerateArray());
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data").EnumerateArray());
        var listed = Assert.Single((await ListAsync(client, "")).GetProperty("data").EnumerateArray());
        Assert.Equal(("yes", 0), (listed.GetProperty("metadata").GetProperty("fresh").GetString(), listed.GetProperty("messageCount").GetInt32()));
        Assert.Single(model.Requests);
    }

    [Fact]
    public async Task A_watch_of_a_deleted_thread_ends_and_never_carries_on_into_a_new_thread_of_the_same_id()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        const string threadId = "thread_watched";
        await client.CreateThreadAsync(new { threadId }, Guard);
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "what is 2 + 3?" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        await using var watched = watcher.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        while (await watched.MoveNextAsync() && !SseEvents.IsRunEnd(watched.Current))
        {
        }

        using (var deleted = await client.DeleteAsync($"/threads/{threadId}", Guard))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        await client.CreateThreadAsync(new { threadId }, Guard);
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "and 4 + 5?" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        var after = new List<SseEvent>();
        while (await watched.MoveNextAsync())
        {
            after.Add(watched.Current);
        }

        Assert.Empty(after);
    }

    [Fact]
    public async Task Retention_compacts_events_older_than_the_age_and_keeps_messages_and_runs()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("One ", "two ", "three."));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?>
        {
            ["Retention:EventLogMaxAge"] = "1.00:00:00",
            ["Retention:Interval"] = "00:00:00.100",
            // The grain keeps only its latest event in memory: older ones are read from the log.
            ["Streams:TailCapacity"] = "1",
        });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "count" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        var last = await app.QueryStorageAsync("SELECT MAX(sequence) FROM events WHERE thread_id = @id", threadId);
        Assert.True(last > 4, $"The run has more than four events ({last}).");

        // The first three events are made two days old, as if the run had happened then.
        var aged = await app.QueryStorageAsync(
            app.Topology == GatewayTopology.Cluster
                ? "WITH aged AS (UPDATE events SET created_at = now() - interval '2 days' WHERE thread_id = @id AND sequence <= 3 RETURNING 1) SELECT COUNT(*) FROM aged"
                : "UPDATE events SET created_at = '2000-01-01T00:00:00.0000000Z' WHERE thread_id = @id AND sequence <= 3 RETURNING 1",
            threadId);
        Assert.Equal(1, Math.Min(aged, 1));

        var remaining = await TestTimeouts.EventuallyAsync(
            () => app.QueryStorageAsync("SELECT COUNT(*) FROM events WHERE thread_id = @id AND sequence <= 3", threadId),
            count => count == 0);
        Assert.Equal(0, remaining);
        Assert.Equal(last - 3, await app.QueryStorageAsync("SELECT COUNT(*) FROM events WHERE thread_id = @id", threadId));

        // The stream from the start, and a cursor inside the compacted range, resume at the first retained event.
        foreach (var after in new[] { 0, 2 })
        {
            using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after={after}", cancellationToken: Guard);
            var replayed = await watcher.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Sequence == last, Guard);
            Assert.Equal(4, replayed[0].Sequence);
            Assert.Equal("run.completed", replayed[^1].Type);
        }

        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["count", "One two three."], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        Assert.Equal("completed", (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs", Guard)).GetProperty("data")[0].GetProperty("status").GetString());
    }
}
