using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>Cancel, a second message during a run, and clients that go away.</summary>
public sealed class CancelAndConcurrencyTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Cancel_stops_a_slow_stream_keeps_partial_output_marked_cancelled_and_is_idempotent()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Thinking ", "slowly").HangAfter(3));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "take your time", stream = true }, Guard);
        await using var events = response.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        var seen = new List<SseEvent>();
        while (await events.MoveNextAsync() && !(events.Current.Type == "text.delta" && events.Current.Str("text") == "slowly"))
        {
            seen.Add(events.Current);
        }

        var runId = seen[0].Str("runId")!;
        using var cancel = await client.PostAsync($"/threads/{threadId}/runs/{runId}/cancel", null, Guard);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var rest = new List<SseEvent>();
        while (await events.MoveNextAsync())
        {
            rest.Add(events.Current);
            if (SseEvents.IsRunEnd(events.Current))
            {
                break;
            }
        }

        Assert.Equal("run.cancelled", rest[^1].Type);
        var partial = Assert.Single(rest, e => e.Type == "message.completed");
        Assert.Equal("cancelled", partial.Str("status"));
        Assert.Equal("Thinking slowly", partial.Str("content"));
        Assert.True(await model.Requests[0].Aborted.WaitAsync(Guard), "The model request was aborted when the run was cancelled.");

        using var again = await client.PostAsync($"/threads/{threadId}/runs/{runId}/cancel", null, Guard);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var run = await again.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal("cancelled", run.GetProperty("status").GetString());
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal("cancelled", messages[1].GetProperty("status").GetString());
        Assert.Equal("Thinking slowly", messages[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Cancel_of_an_unknown_run_is_404()
    {
        await using var app = new GatewayApp();
        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await app.Client.PostAsync($"/threads/{threadId}/runs/run_missing/cancel", null, Guard);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Second_message_during_an_active_run_gets_409_with_the_active_run_id()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var first = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "one", stream = true }, Guard);
        var started = await first.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "run.started", Guard);

        using var second = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "two", stream = true }, Guard);

        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Equal("application/problem+json", second.Content.Headers.ContentType?.MediaType);
        var problem = await second.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(started[0].Str("runId"), problem.GetProperty("activeRunId").GetString());
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["one"], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task A_client_that_disconnects_does_not_stop_the_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("one ", "two ", "three ", "four").WithDelay(TimeSpan.FromMilliseconds(50)));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        string runId;
        using (var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "count", stream = true }, Guard))
        {
            var first = await response.ReadEventsAsync(Guard).ReadUntilAsync(e => e.Type == "text.delta", Guard);
            runId = first[0].Str("runId")!;
        }

        // The client is gone; the run goes on and its end reaches a later subscriber from the beginning.
        using var watcher = await client.OpenEventStreamAsync($"/threads/{threadId}/events?after=0", cancellationToken: Guard);
        var events = await watcher.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Equal(runId, events[^1].Str("runId"));
        Assert.Equal("one two three four", string.Concat(events.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal("one two three four", messages[1].GetProperty("content").GetString());
        Assert.Equal("completed", messages[1].GetProperty("status").GetString());
    }
}
