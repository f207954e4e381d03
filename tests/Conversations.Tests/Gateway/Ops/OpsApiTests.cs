using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Ops;

/// <summary>
/// The ops dashboard's endpoints: its access rule, the cluster-wide numbers it shows (from the silos' run monitors,
/// Orleans' management grain and the gateways' reports) and its thread watcher, which is not counted as a subscriber.
/// </summary>
public sealed class OpsApiTests
{
    /// <summary>Ops on, reporting and refreshing fast so the tests need not wait for the default intervals.</summary>
    public static readonly Dictionary<string, string?> Enabled = new()
    {
        ["Ops:Enabled"] = "true",
        ["Ops:ReportInterval"] = "00:00:00.200",
        ["Ops:RefreshInterval"] = "00:00:00.200",
    };

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Theory]
    [InlineData("/ops")]
    [InlineData("/ops/snapshot")]
    [InlineData("/ops/events")]
    [InlineData("/ops/ops.js")]
    [InlineData("/ops/orleans/")]
    [InlineData("/ops/orleans/DashboardCounters")]
    [InlineData("/ops/threads/t1/events")]
    public async Task Ops_endpoints_are_not_found_outside_development_unless_enabled(string path)
    {
        await using var app = new GatewayApp();
        using var response = await app.Client.GetAsync(path, Guard);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Ops:Enabled", await response.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_ops_enabled_the_dashboard_and_the_orleans_dashboard_are_served()
    {
        await using var app = new GatewayApp(Enabled);
        using (var page = await app.Client.GetAsync("/ops", Guard))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            var html = await page.Content.ReadAsStringAsync(Guard);
            Assert.Contains("<h1>Ops dashboard</h1>", html, StringComparison.Ordinal);
            Assert.Contains("href=\"/ops/orleans/\"", html, StringComparison.Ordinal);
        }

        // The ops files are served behind the gate only, never as plain static files.
        using (var script = await app.Client.GetAsync("/ops/ops.js", Guard))
        {
            Assert.Equal(HttpStatusCode.OK, script.StatusCode);
            Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        }

        using (var orleans = await app.Client.GetAsync("/ops/orleans", Guard))
        {
            // Redirected to /ops/orleans/ (its pages use relative paths), then its page.
            Assert.Equal(HttpStatusCode.OK, orleans.StatusCode);
            Assert.Equal("/ops/orleans/", orleans.RequestMessage?.RequestUri?.AbsolutePath);
            Assert.Contains("<title>Orleans Dashboard</title>", await orleans.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
        }

        // Its API reads the cluster (the silos' dashboard grains): the silo is listed.
        var counters = await TestTimeouts.EventuallyAsync(
            () => app.Client.GetFromJsonAsync<JsonElement>("/ops/orleans/DashboardCounters", Guard),
            c => c.GetProperty("hosts").GetArrayLength() > 0);
        Assert.Equal("Active", counters.GetProperty("hosts")[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_snapshot_counts_runs_tool_calls_tokens_and_time_to_first_token_from_the_cluster()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"17*23\"}")).WithUsage(20, 7),
            ScriptedResponse.Text("17 × 23 ", "is 391.").WithUsage(40, 5));
        await using var app = GatewayApp.WithModel(model, Enabled);
        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);
        using (var sent = await app.Client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "17*23?" }, Guard))
        {
            sent.EnsureSuccessStatusCode();
        }

        // Run activity reaches the monitors on Orleans streams (polled): a little after the run.
        var snapshot = await TestTimeouts.EventuallyAsync(SnapshotAsync(app), s => s.GetProperty("runs").GetProperty("completed").GetInt64() == 1);
        var runs = snapshot.GetProperty("runs");
        Assert.Equal(1, runs.GetProperty("started").GetInt64());
        Assert.Equal(1, runs.GetProperty("completed").GetInt64());
        Assert.Equal(0, runs.GetProperty("active").GetInt32());
        Assert.Equal(1, runs.GetProperty("toolCalls").GetInt64());
        Assert.Equal(0, runs.GetProperty("toolFailures").GetInt64());
        Assert.Equal(12, runs.GetProperty("completionTokens").GetInt64());
        Assert.Equal(60, runs.GetProperty("promptTokens").GetInt64());
        Assert.Equal(1, runs.GetProperty("timeToFirstTokenSamples").GetInt32());
        Assert.True(runs.GetProperty("timeToFirstTokenP50Ms").GetDouble() >= 0);
        Assert.Equal(runs.GetProperty("timeToFirstTokenP50Ms").GetDouble(), runs.GetProperty("timeToFirstTokenP95Ms").GetDouble());
        // Streamed tokens sum to the model's count (estimates are corrected when each message completes), and they
        // were streamed within the rate's window.
        Assert.True(runs.GetProperty("tokensPerSecond").GetDouble() > 0);
        Assert.Equal(0, snapshot.GetProperty("recentErrors").GetArrayLength());

        var silo = Assert.Single(snapshot.GetProperty("silos").EnumerateArray());
        Assert.Equal("Active", silo.GetProperty("status").GetString());
        Assert.True(silo.GetProperty("activations").GetInt32() > 0);
        Assert.Contains(snapshot.GetProperty("grains").EnumerateArray(), g => g.GetProperty("type").GetString() == "ThreadGrain");
        Assert.Equal(app.ModeName, Assert.Single(snapshot.GetProperty("gateways").EnumerateArray()).GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Failed_tool_calls_and_failed_runs_are_listed_with_their_run_links()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_x", "no_such_tool", "{}")),
            ScriptedResponse.Text("That tool does not exist."),
            ScriptedResponse.Error(400, "This model does not take that request."));
        await using var app = GatewayApp.WithModel(model, Enabled);
        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);
        var toolRun = await SendAsync(app, threadId, "use a tool");
        var failedRun = await SendAsync(app, threadId, "fail");

        var snapshot = await TestTimeouts.EventuallyAsync(SnapshotAsync(app), s => s.GetProperty("runs").GetProperty("failed").GetInt64() == 1);
        Assert.Equal(1, snapshot.GetProperty("runs").GetProperty("toolFailures").GetInt64());
        var errors = snapshot.GetProperty("recentErrors").EnumerateArray().ToList();
        Assert.Equal(2, errors.Count);
        var runError = Assert.Single(errors, e => e.GetProperty("kind").GetString() == "run");
        Assert.Equal(failedRun, runError.GetProperty("runId").GetString());
        Assert.Equal("model_error", runError.GetProperty("code").GetString());
        var toolError = Assert.Single(errors, e => e.GetProperty("kind").GetString() == "tool");
        Assert.Equal(toolRun, toolError.GetProperty("runId").GetString());
        Assert.Equal("no_such_tool", toolError.GetProperty("tool").GetString());
        Assert.Contains("no_such_tool", toolError.GetProperty("message").GetString(), StringComparison.Ordinal);

        // The links lead to the runs.
        foreach (var error in errors)
        {
            var run = await app.Client.GetFromJsonAsync<JsonElement>(error.GetProperty("runUrl").GetString(), Guard);
            Assert.Equal(error.GetProperty("runId").GetString(), run.GetProperty("id").GetString());
        }
    }

    [Fact]
    public async Task A_dashboard_watcher_sees_a_threads_events_without_counting_as_a_subscriber()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("partial ", "answer").HoldAfter(2, release.Task));
        await using var app = GatewayApp.WithModel(model, Enabled);
        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);
        using var subscriber = await app.Client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        var runId = await SendAsync(app, threadId, "go", wait: false);

        // The watcher joins mid-run without a cursor: it gets the active run from its start.
        using var watcher = await app.Client.OpenEventStreamAsync($"/ops/threads/{threadId}/events", cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.OK, watcher.StatusCode);
        var watched = watcher.ReadEventsAsync(Guard);
        var seen = await watched.ReadUntilAsync(e => e.Type == "text.delta", Guard);
        Assert.Equal("run.started", seen[0].Type);
        Assert.Equal(runId, seen[0].Str("runId"));

        // Gateways report every interval, run activity arrives on polled streams: both a little later.
        var snapshot = await TestTimeouts.EventuallyAsync(
            SnapshotAsync(app),
            s => Thread(s, threadId) is { } t && t.GetProperty("watchers").GetInt32() == 1 && s.GetProperty("activeRuns").GetArrayLength() == 1);
        var thread = Thread(snapshot, threadId)!.Value;
        Assert.Equal(1, thread.GetProperty("subscribers").GetInt32());
        Assert.Equal(1, thread.GetProperty("watchers").GetInt32());
        var gateway = Assert.Single(snapshot.GetProperty("gateways").EnumerateArray());
        Assert.Equal(1, gateway.GetProperty("subscribers").GetInt32());
        var active = Assert.Single(snapshot.GetProperty("activeRuns").EnumerateArray());
        Assert.Equal(threadId, active.GetProperty("threadId").GetString());
        Assert.Equal(runId, active.GetProperty("runId").GetString());
        Assert.Equal("default", active.GetProperty("agent").GetString());
        Assert.Equal(1, snapshot.GetProperty("runs").GetProperty("active").GetInt32());

        release.SetResult();
        var rest = await watched.ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", rest[^1].Type);
        Assert.Equal("partial answer", string.Concat(seen.Concat(rest).Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
    }

    [Fact]
    public async Task The_event_stream_pushes_snapshots()
    {
        await using var app = new GatewayApp(Enabled);
        using var response = await app.Client.OpenEventStreamAsync("/ops/events", cancellationToken: Guard);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var snapshots = new List<SseEvent>();
        await foreach (var item in response.ReadEventsAsync(Guard))
        {
            snapshots.Add(item);
            if (snapshots.Count == 2)
            {
                break;
            }
        }

        Assert.All(snapshots, s => Assert.Equal("snapshot", s.Type));
        Assert.True(snapshots[1].Data.GetProperty("at").GetDateTimeOffset() > snapshots[0].Data.GetProperty("at").GetDateTimeOffset());
        Assert.NotEmpty(snapshots[1].Data.GetProperty("silos").EnumerateArray());
    }

    private static JsonElement? Thread(JsonElement snapshot, string threadId) =>
        snapshot.GetProperty("gateways").EnumerateArray()
            .SelectMany(g => g.GetProperty("threads").EnumerateArray())
            .Where(t => t.GetProperty("threadId").GetString() == threadId)
            .Select(t => (JsonElement?)t)
            .FirstOrDefault();

    private static Func<Task<JsonElement>> SnapshotAsync(GatewayApp app) =>
        () => app.Client.GetFromJsonAsync<JsonElement>("/ops/snapshot", Guard);

    private static async Task<string> SendAsync(GatewayApp app, string threadId, string content, bool wait = true)
    {
        using var response = await app.Client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content, wait }, Guard);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        return body.GetProperty("runId").GetString()!;
    }
}
