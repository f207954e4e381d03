using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Conversations.Tests.Gateway.Agents;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster;

/// <summary>
/// Each multitask strategy under concurrent senders on two gateways (real processes, one silo, PostgreSQL): while a
/// run is held mid-answer, six messages arrive at once, three through each gateway. Whatever order the thread takes
/// them in, what each strategy promises holds: no accepted message lost or answered twice, every accepted run ends,
/// and a watcher on each gateway sees every run end.
/// </summary>
public sealed class ClusterMultitaskTests : PostgresTestBase
{
    private const int Concurrent = 6;

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Theory]
    [InlineData("reject")]
    [InlineData("enqueue")]
    [InlineData("interrupt")]
    [InlineData("rollback")]
    [InlineData("steer")]
    public async Task Concurrent_senders_on_two_gateways_get_what_the_strategy_promises(string strategy)
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("first ", "answer").HoldAfter(2, release.Task));
        model.Enqueue([.. Enumerable.Range(1, 3 * Concurrent).Select(i => ScriptedResponse.Text($"answer {i}"))]);
        await using var cluster = await ClusterProcesses.StartAsync(Fixture, silos: 1, gateways: 2, ModelSettings(model), Guard);
        var gateways = cluster.Gateways.Select(g => g.Client).ToArray();
        var threadId = await gateways[0].CreateThreadAsync(cancellationToken: Guard);
        var watchers = await Task.WhenAll(gateways.Select(g => g.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard)));
        var seen = watchers.Select(w => new EventLog(w)).ToArray();

        var first = await SendAsync(gateways[0], threadId, "m0", strategy);
        Assert.Equal(HttpStatusCode.Accepted, first.Status);
        var firstRunId = first.Body.Str("runId")!;
        await model.WaitForRequestAsync(1, Guard);
        await seen[1].WaitForAsync(e => e.Type == "text.delta" && e.Str("runId") == firstRunId, Guard);

        var sends = await Task.WhenAll(Enumerable.Range(1, Concurrent).Select(i => SendAsync(gateways[i % 2], threadId, $"m{i}", strategy)));
        release.SetResult();

        var accepted = sends.Where(s => s.Status == HttpStatusCode.Accepted).Select(s => s.Body).Prepend(first.Body).ToList();
        var runIds = accepted.Select(a => a.Str("runId")!).Distinct().ToList();
        var runs = await TestTimeouts.EventuallyAsync(
            () => ListRunsAsync(gateways[1], threadId),
            list => list.Count > 0 && list.All(r => r.Str("status") is "completed" or "failed" or "cancelled"));
        var messages = (await gateways[0].GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages?limit=100", Guard))
            .GetProperty("data").EnumerateArray().ToList();
        var users = messages.Where(m => m.Str("role") == "user").Select(m => m.Str("content")!).ToList();

        // Every run that is still listed ended, and every watcher on either gateway saw it end.
        Assert.All(runs, r => Assert.NotEqual("failed", r.Str("status")));
        foreach (var log in seen)
        {
            var ends = await log.WaitForAsync(
                events => runs.All(r => events.Any(e => SseEvents.IsRunEnd(e) && e.Str("runId") == r.Str("id"))), Guard);
            Assert.Equal(ends.Select(e => e.Sequence).Order(), ends.Select(e => e.Sequence));
            Assert.Equal(ends.Count, ends.Select(e => e.Sequence).Distinct().Count());
        }

        // A stored message is stored once; the history alternates as it was answered.
        Assert.Equal(users.Count, users.Distinct().Count());
        Assert.Equal("user", messages[0].Str("role"));
        Assert.Equal(Enumerable.Range(1, messages.Count), messages.Select(m => m.GetProperty("ordinal").GetInt32()));
        Assert.Equal("assistant", messages[^1].Str("role"));

        switch (strategy)
        {
            case "reject":
                // The first run held the thread throughout: every other message was refused, naming it, and none stored.
                Assert.All(sends, s =>
                {
                    Assert.Equal(HttpStatusCode.Conflict, s.Status);
                    Assert.Equal(firstRunId, s.Body.Str("activeRunId"));
                });
                Assert.Equal(["m0"], users);
                Assert.Equal("completed", Assert.Single(runs).Str("status"));
                break;

            case "enqueue":
                // All queued behind the first, run one by one in the order taken, each answered in its own run.
                Assert.All(sends, s => Assert.Equal("queued", s.Body.Str("status")));
                Assert.Equal(Concurrent + 1, runs.Count);
                Assert.All(runs, r => Assert.Equal("completed", r.Str("status")));
                var byStart = runs.OrderBy(r => r.GetProperty("startSequence").GetInt64()).ToList();
                var userIds = messages.Where(m => m.Str("role") == "user").Select(m => m.Str("id")).ToList();
                Assert.Equal(userIds, byStart.Select(r => r.Str("userMessageId")));
                Assert.Equal(Concurrent + 1, users.Count);
                AssertAlternates(messages);
                break;

            case "interrupt":
                // Every message stored and its run started; each run but the last was cut short by the next.
                Assert.All(sends, s => Assert.Equal(HttpStatusCode.Accepted, s.Status));
                Assert.Equal(Concurrent + 1, users.Count);
                Assert.Equal(Concurrent + 1, runs.Count);
                Assert.Equal("cancelled", runs.Single(r => r.Str("id") == firstRunId).Str("status"));
                Assert.Equal("completed", runs.MaxBy(r => r.GetProperty("startSequence").GetInt64())!.Str("status"));
                break;

            case "rollback":
                // A rolled-back run is gone with its messages: what stays is runs that each answered their message.
                Assert.All(sends, s => Assert.Equal(HttpStatusCode.Accepted, s.Status));
                Assert.DoesNotContain("m0", users);
                Assert.DoesNotContain(runs, r => r.Str("id") == firstRunId);
                Assert.Equal(users.Count, runs.Count);
                Assert.All(runs, r => Assert.Equal("completed", r.Str("status")));
                AssertAlternates(messages);
                Assert.Equal(404, (int)(await gateways[1].GetAsync($"threads/{threadId}/runs/{firstRunId}", Guard)).StatusCode);
                break;

            case "steer":
                // No message acknowledged and dropped: each is stored once, either joined a run or started one.
                Assert.All(sends, s => Assert.Equal(HttpStatusCode.Accepted, s.Status));
                Assert.Equal(Concurrent + 1, users.Count);
                var steered = sends.Count(s => s.Body.TryGetProperty("steered", out var flag) && flag.GetBoolean());
                Assert.Equal(Concurrent + 1 - steered, runs.Count);
                Assert.Equal(runIds.Count, runs.Count);
                Assert.All(runs, r => Assert.Equal("completed", r.Str("status")));
                // Every user message is followed by an answer before the history ends.
                var lastUser = messages.FindLastIndex(m => m.Str("role") == "user");
                Assert.Contains(messages.Skip(lastUser), m => m.Str("role") == "assistant");
                break;
        }
    }

    private static void AssertAlternates(List<JsonElement> messages) =>
        Assert.Equal(
            Enumerable.Range(0, messages.Count).Select(i => i % 2 == 0 ? "user" : "assistant"),
            messages.Select(m => m.Str("role")));

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient client, string threadId, string content, string strategy)
    {
        using var response = await client.PostAsJsonAsync(
            $"threads/{threadId}/messages", new { content, wait = false, multitaskStrategy = strategy }, Guard);
        return (response.StatusCode, await response.JsonAsync(Guard));
    }

    private static async Task<List<JsonElement>> ListRunsAsync(HttpClient client, string threadId) =>
        [.. (await client.GetFromJsonAsync<JsonElement>($"threads/{threadId}/runs?limit=100", Guard)).GetProperty("data").EnumerateArray()];

    private static Dictionary<string, string?> ModelSettings(FakeOpenAiServer model) => new()
    {
        ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
        ["OPENAI_API_KEY"] = "sk-test",
        ["OPENAI_MODEL"] = "fake-model",
        ["OpenAI__MaxRetries"] = "0",
    };

    /// <summary>A watcher's events as they arrive, read in the background.</summary>
    private sealed class EventLog
    {
        private readonly List<SseEvent> _events = [];
        private readonly Lock _gate = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public EventLog(HttpResponseMessage stream)
        {
            _ = ReadAsync(stream);
        }

        public async Task<List<SseEvent>> WaitForAsync(Func<IReadOnlyList<SseEvent>, bool> done, CancellationToken cancellationToken)
        {
            while (true)
            {
                Task changed;
                lock (_gate)
                {
                    if (done(_events))
                    {
                        return [.. _events];
                    }

                    changed = _changed.Task;
                }

                await changed.WaitAsync(cancellationToken);
            }
        }

        public Task<List<SseEvent>> WaitForAsync(Func<SseEvent, bool> match, CancellationToken cancellationToken) =>
            WaitForAsync(events => events.Any(match), cancellationToken);

        private async Task ReadAsync(HttpResponseMessage stream)
        {
            using (stream)
            {
                try
                {
                    await foreach (var e in stream.ReadEventsAsync(Guard))
                    {
                        lock (_gate)
                        {
                            _events.Add(e);
                            _changed.SetResult();
                            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        }
                    }
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
                {
                    // The cluster went away at the end of the test.
                }
            }
        }
    }
}
