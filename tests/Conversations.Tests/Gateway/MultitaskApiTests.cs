using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>The multitask strategies and optimistic sends through the native API.</summary>
public sealed class MultitaskApiTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task An_enqueued_message_streams_its_own_run_after_the_active_one_and_wait_false_answers_at_once()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("first").HoldAfter(1, release.Task), ScriptedResponse.Text("second"), ScriptedResponse.Text("third"));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var first = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "one", stream = true }, Guard);
        await first.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "run.started", Guard);

        using var second = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "two", stream = true, multitaskStrategy = "enqueue" }, Guard);
        await using var secondEvents = second.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        Assert.True(await secondEvents.MoveNextAsync());
        var queued = secondEvents.Current;
        using var third = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "three", multitaskStrategy = "enqueue", wait = false }, Guard);
        var thirdBody = await third.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        var thirdRunId = thirdBody.GetProperty("runId").GetString()!;
        var queuedRun = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{thirdRunId}", Guard);
        release.SetResult();
        var rest = new List<SseEvent>();
        while (await secondEvents.MoveNextAsync())
        {
            rest.Add(secondEvents.Current);
            if (SseEvents.IsRunEnd(secondEvents.Current))
            {
                break;
            }
        }

        Assert.Equal("run.queued", queued.Type);
        var secondRunId = queued.Str("runId");
        Assert.Equal(HttpStatusCode.Accepted, third.StatusCode);
        Assert.Equal($"/threads/{threadId}/runs/{thirdRunId}", third.Headers.Location?.OriginalString);
        Assert.Equal(("queued", false), (thirdBody.GetProperty("status").GetString(), thirdBody.GetProperty("steered").GetBoolean()));
        Assert.Equal([secondRunId, thirdRunId], thread.GetProperty("queuedRunIds").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("queued", queuedRun.GetProperty("status").GetString());
        Assert.Equal("run.started", rest[0].Type);
        Assert.All(rest, e => Assert.Equal(secondRunId, e.Str("runId")));
        Assert.Equal("run.completed", rest[^1].Type);
        Assert.Equal("second", rest.Single(e => e.Type == "message.completed").Str("content"));

        var ended = await TestTimeouts.EventuallyAsync(
            () => client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{thirdRunId}", Guard),
            run => run.GetProperty("status").GetString() == "completed");
        Assert.True(ended.GetProperty("startSequence").GetInt64() > rest[^1].Sequence, "The third run started after the second ended.");
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["one", "first", "two", "second", "three", "third"], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task Interrupt_ends_the_active_stream_with_run_cancelled_and_the_new_message_is_answered()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("half").HangAfter(2), ScriptedResponse.Text("whole"));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var first = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "one", stream = true }, Guard);
        await using var firstEvents = first.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        while (await firstEvents.MoveNextAsync() && firstEvents.Current.Type != "text.delta")
        {
        }

        using var second = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "two", multitaskStrategy = "interrupt" }, Guard);
        var result = await second.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var firstRest = new List<SseEvent>();
        while (await firstEvents.MoveNextAsync())
        {
            firstRest.Add(firstEvents.Current);
            if (SseEvents.IsRunEnd(firstEvents.Current))
            {
                break;
            }
        }

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(("completed", "whole"), (result.GetProperty("status").GetString(), result.GetProperty("message").GetProperty("content").GetString()));
        Assert.Equal("run.cancelled", firstRest[^1].Type);
        Assert.Equal("interrupted by a newer message", firstRest[^1].Str("reason"));
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(
            [("one", "completed"), ("half", "cancelled"), ("two", "completed"), ("whole", "completed")],
            messages.EnumerateArray().Select(m => (m.GetProperty("content").GetString(), m.GetProperty("status").GetString())));
    }

    [Fact]
    public async Task A_bad_strategy_or_an_outdated_expectation_is_refused_naming_the_field_and_nothing_is_stored()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var done = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "What is 2 + 2?" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }

        var before = await client.GetStringAsync($"/threads/{threadId}/messages", Guard);

        using var strategy = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", multitaskStrategy = "bogus" }, Guard);
        using var both = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", stream = true, wait = false }, Guard);
        using var stale = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", expectedLastSequence = 1 }, Guard);
        using var staleMessage = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", expectedLastMessageId = "msg_nope" }, Guard);

        Assert.Equal(HttpStatusCode.BadRequest, strategy.StatusCode);
        Assert.Contains("reject, enqueue, interrupt, rollback, steer", (await strategy.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors").GetProperty("multitaskStrategy")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        Assert.True((await both.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors").TryGetProperty("wait", out _));
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        var conflict = await stale.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal("expectedLastSequence", conflict.GetProperty("field").GetString());
        var lastSequence = conflict.GetProperty("lastSequence").GetInt64();
        Assert.True(lastSequence > 1);
        Assert.Equal(HttpStatusCode.Conflict, staleMessage.StatusCode);
        var lastMessageId = (await staleMessage.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("lastMessageId").GetString();
        Assert.Equal(before, await client.GetStringAsync($"/threads/{threadId}/messages", Guard));

        // With what the thread really is, the send goes through.
        using var current = await client.PostAsJsonAsync(
            $"/threads/{threadId}/messages", new { content = "And 3 + 3?", expectedLastSequence = lastSequence, expectedLastMessageId = lastMessageId }, Guard);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
    }
}
