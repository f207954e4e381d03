using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Grains;

/// <summary>
/// A run whose silo goes away, with nobody watching: the thread's active-run reminder wakes it on a live silo, which
/// ends the run as interrupted and tells the log.
/// </summary>
public sealed class RunFailoverTests : GrainTestBase
{
    // Quick to declare a killed silo dead, so its reminders move to a live silo within a test's time.
    private static readonly Dictionary<string, string?> FastFailureDetection = new()
    {
        ["Cluster:ProbeTimeout"] = "00:00:01",
        ["Cluster:MissedProbesLimit"] = "2",
    };

    [Fact]
    public async Task Under_the_fail_policy_a_run_whose_silo_crashed_is_failed_as_interrupted_on_a_live_silo_woken_by_its_reminder()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("never", "sent").HangAfter(1));
        await using var grains = await StartClusterAsync(new GrainClusterOptions
        {
            Silos = 3,
            Model = model,
            RelayDatabase = true,
            Settings = new Dictionary<string, string?>(FastFailureDetection) { ["Runs:OnLostRun"] = "fail" },
        });
        var (thread, created) = await CreateThreadAsync(grains);
        var threadId = created.Id;
        var run = await SendAsync(thread, "Hello?");
        await model.WaitForRequestAsync(1, TestTimeouts.Guard()); // the run is in the model call, which hangs
        Assert.Equal(1, await ActiveRunRemindersAsync(grains, threadId));
        var host = grains.HostOf(thread);
        Assert.NotNull(host);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);

        // The silo dies: nothing it does from now on is stored. Nobody calls the thread afterwards.
        await grains.CrashAsync(host);
        Assert.Equal(RunStatuses.Running, (await grains.History.ReadRunAsync(threadId, run.RunId, Ct))?.Status);
        Assert.Equal(run.RunId, (await grains.ReadStateAsync(threadId)).State!.ActiveRunId);

        // Its reminder wakes the thread on a live silo; activating it ends the run.
        var ended = await EventuallyAsync(
            () => grains.History.ReadRunAsync(threadId, run.RunId, Ct),
            r => r?.Status != RunStatuses.Running,
            "the lost run is ended",
            grains);
        Assert.Equal((RunStatuses.Failed, RunErrorCodes.Interrupted), (ended?.Status, ended?.Error?.Code));
        var newHost = grains.HostOf(thread);
        Assert.NotNull(newHost);
        Assert.NotEqual(host.SiloAddress, newHost.SiloAddress);

        // The run's end is stored before its event (the event is written right after): wait for the log too.
        var logged = await EventuallyAsync(() => grains.StoredEventsAsync(threadId, lastSequence), e => e.OfType<RunFailed>().Any(), "run.failed is logged", grains);
        var failed = Assert.Single(logged.OfType<RunFailed>());
        Assert.Equal((run.RunId, RunErrorCodes.Interrupted), (failed.RunId, failed.Error.Code));
        Assert.Null((await grains.ReadStateAsync(threadId)).State!.ActiveRunId);
        await EventuallyAsync(() => ActiveRunRemindersAsync(grains, threadId), n => n == 0, "the reminder is removed", grains);

        // Callers see the same, and the thread runs again.
        Assert.Null((await thread.GetAsync(Ct))?.ActiveRunId);
        Assert.Equal(RunStatuses.Failed, (await thread.GetRunAsync(run.RunId, Ct))?.Status);
        var replayed = await TakeAsync(thread, lastSequence, logged.Count); // the run's events the dying silo had stored, then its end
        Assert.Equal(Sequences(logged), Sequences(replayed));
        Assert.Equal(failed.Sequence, Assert.IsType<RunFailed>(replayed[^1]).Sequence);
        model.Enqueue(ScriptedResponse.Text("Back."));
        var next = await SendAsync(thread, "Again?");
        Assert.True(next.StartSequence > failed.Sequence, $"The next run starts at {next.StartSequence}, not after {failed.Sequence}.");
        Assert.IsType<RunCompleted>((await WaitForRunEndAsync(thread, next))[^1]);
    }

    [Fact]
    public async Task A_run_whose_silo_crashed_after_a_tool_call_resumes_on_a_live_silo_without_calling_the_tool_again()
    {
        var counter = new CountingTool();
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_count", CountingTool.Name, "{}")),
            ScriptedResponse.Text("Counted, and then").HangAfter(2),
            ScriptedResponse.Text("Counted once."));
        await using var grains = await StartClusterAsync(new GrainClusterOptions
        {
            Silos = 3,
            Model = model,
            RelayDatabase = true,
            Settings = FastFailureDetection,
            Tools = [counter],
        });
        var (thread, created) = await CreateThreadAsync(grains);
        var run = await SendAsync(thread, "Count, please.");
        var watched = WaitForRunEndAsync(thread, run); // a watcher from the start, through the crash
        await model.WaitForRequestAsync(2, TestTimeouts.Guard()); // the tool ran; the second model call hangs
        var host = grains.HostOf(thread);
        Assert.NotNull(host);

        await grains.CrashAsync(host);
        var events = await watched;

        Assert.Equal(1, counter.Calls);
        Assert.IsType<RunCompleted>(events[^1]);
        Assert.Single(events.OfType<ToolCallCompleted>(), e => e.CallId == "call_count");
        Assert.Contains(events, e => e is AgentStatusChanged { Status: AgentStatuses.Resuming });
        Assert.Equal(3, model.Requests.Count);
        Assert.Contains(model.Requests[2].Messages, m => m?["role"]?.ToString() == "tool" && m["tool_call_id"]?.ToString() == "call_count");
        var messages = await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct);
        Assert.Equal([MessageRoles.User, MessageRoles.Assistant, MessageRoles.Tool, MessageRoles.Assistant], messages.Select(m => m.Role));
        Assert.Equal("Counted once.", messages[^1].Content);
        Assert.Equal(Sequences(events).Order(), Sequences(events));
        Assert.Equal((RunStatuses.Completed, 1), ((await thread.GetRunAsync(run.RunId, Ct))?.Status, (await thread.GetRunAsync(run.RunId, Ct))?.Resumes));
    }

    [Fact]
    public async Task A_run_with_a_waiting_steer_and_a_queued_run_survive_a_crash_of_the_silo_and_go_on_on_a_live_one_by_themselves()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(
            ScriptedResponse.Text("never", "sent").HangAfter(1),
            ScriptedResponse.Text("resumed answer"),
            ScriptedResponse.Text("steer answer"),
            ScriptedResponse.Text("queued answer"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions
        {
            Silos = 3,
            Model = model,
            RelayDatabase = true,
            Settings = FastFailureDetection,
        });
        var (thread, created) = await CreateThreadAsync(grains);
        var threadId = created.Id;
        var run = await SendAsync(thread, "Hello?");
        await model.WaitForRequestAsync(1, TestTimeouts.Guard());
        var steer = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Steer me") { MultitaskStrategy = Conversations.Grains.Abstractions.Agents.MultitaskStrategies.Steer }, Ct));
        var queued = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Queue me") { MultitaskStrategy = Conversations.Grains.Abstractions.Agents.MultitaskStrategies.Enqueue }, Ct));
        var host = grains.HostOf(thread);
        Assert.NotNull(host);

        // The silo dies with the run in its model call and the steer not yet taken. Nobody calls the thread afterwards.
        await grains.CrashAsync(host);

        // The reminder wakes the thread on a live silo: the lost run is resumed and takes the steer at its next model
        // call; then the queued message runs. Every message is stored once.
        var stored = await EventuallyAsync(
            () => grains.History.ReadRunAsync(threadId, queued.RunId, Ct),
            r => r?.Status == RunStatuses.Completed,
            "the queued run completed",
            grains);
        Assert.NotNull(stored);
        var resumed = await thread.GetRunAsync(run.RunId, Ct);
        Assert.True(resumed?.Status == RunStatuses.Completed, $"The resumed run is {resumed}. Silo logs:{Environment.NewLine}{grains.Logs}");
        Assert.Equal(1, resumed.Resumes);
        var messages = await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct);
        Assert.Equal(["Hello?", "resumed answer", "Steer me", "steer answer", "Queue me", "queued answer"], messages.Select(m => m.Content));
        Assert.Equal((steer.UserMessageId, run.RunId), (messages[2].Id, messages[2].RunId));
        Assert.Equal(queued.UserMessageId, messages[4].Id);
        Assert.Empty((await grains.ReadStateAsync(threadId)).State!.Queue);
        await EventuallyAsync(() => ActiveRunRemindersAsync(grains, threadId), n => n == 0, "the reminder is removed", grains);
    }

    [Fact]
    public async Task A_run_whose_silo_stops_fails_as_interrupted_there_and_its_reminder_is_removed_from_a_live_silo()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("never", "sent").HangAfter(1));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var threadId = created.Id;
        var run = await SendAsync(thread, "Hello?");
        var request = await model.WaitForRequestAsync(1, TestTimeouts.Guard());
        var host = grains.HostOf(thread);
        Assert.NotNull(host);

        // A graceful stop: the silo ends its runs first (its watchers would hear why), then deactivates the thread.
        await grains.Cluster.StopSiloAsync(host, Ct);
        Assert.True(await request.Aborted.WaitAsync(TestTimeouts.Guard()), "The model call was not cancelled.");

        var stored = await grains.History.ReadRunAsync(threadId, run.RunId, Ct);
        Assert.Equal((RunStatuses.Failed, RunErrorCodes.Interrupted), (stored?.Status, stored?.Error?.Code));
        Assert.Contains("shut down", stored?.Error?.Message, StringComparison.Ordinal);
        var failed = Assert.Single((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
        Assert.Equal(run.RunId, failed.RunId);
        Assert.Null((await grains.ReadStateAsync(threadId)).State!.ActiveRunId);

        // The stopping silo left the reminder (its reminder service was going too): it wakes the thread on the live
        // silo, which finds no run and removes it.
        await EventuallyAsync(() => ActiveRunRemindersAsync(grains, threadId), n => n == 0, "the reminder is removed", grains);
        Assert.Equal(grains.Cluster.Silos.Single().SiloAddress, grains.HostOf(thread)?.SiloAddress);
        Assert.Null((await thread.GetAsync(Ct))?.ActiveRunId);
        Assert.Equal(RunStatuses.Failed, (await thread.GetRunAsync(run.RunId, Ct))?.Status);
        Assert.Single((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
    }

    [Fact]
    public async Task A_run_whose_end_could_not_be_stored_keeps_its_reminder_which_stores_that_end_once_the_storage_is_back()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("never", "sent").HangAfter(1));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model, RelayDatabase = true });
        var (thread, created) = await CreateThreadAsync(grains);
        var threadId = created.Id;
        var run = await SendAsync(thread, "Hello?");
        await model.WaitForRequestAsync(1, TestTimeouts.Guard());
        var host = grains.HostOf(thread);
        Assert.NotNull(host);

        // The silo hosting the run loses its database; the run ends (cancelled) and cannot store its end. Its
        // activation keeps the end, and the reminder's next tick stores it once the database is back.
        await grains.CutDatabaseAsync(host);
        Assert.IsType<CancelRunResult.Cancelling>(await thread.CancelRunAsync(run.RunId, Ct));
        await WaitUntilAsync(() => Task.FromResult(grains.Logs.Contains($"The end of run {run.RunId}")), "the run's end fails to be stored", () => grains.Logs.ToString());
        Assert.Equal(1, await ActiveRunRemindersAsync(grains, threadId));

        // The database comes back: the reminder, still there, has the run's end stored as it was.
        grains.RestoreDatabase(host);
        var ended = await EventuallyAsync(
            () => grains.History.ReadRunAsync(threadId, run.RunId, Ct),
            r => r?.Status != RunStatuses.Running,
            "the run's end is stored",
            grains);
        Assert.Equal((RunStatuses.Cancelled, null), (ended?.Status, ended?.Error?.Code));
        await EventuallyAsync(() => ActiveRunRemindersAsync(grains, threadId), n => n == 0, "the reminder is removed", grains);
        Assert.Null((await grains.ReadStateAsync(threadId)).State!.ActiveRunId);
        Assert.Null((await thread.GetAsync(Ct))?.ActiveRunId);

        // Watchers heard the end once, and the log has it.
        var events = await EventuallyAsync(() => grains.StoredEventsAsync(threadId), e => e.Count > 0 && e[^1] is RunCancelled, "run.cancelled is logged", grains);
        Assert.Single(events, e => e.IsTerminal);
        Assert.Equal(Sequences(events).Distinct().Order(), Sequences(events));
    }

    private static Task<long> ActiveRunRemindersAsync(GrainCluster grains, string threadId) =>
        ScalarAsync<long>(grains.Database, $"SELECT count(*) FROM orleansreminderstable WHERE grainid LIKE '%{threadId}' AND remindername = '{ThreadGrain.ActiveRunReminder}';");

    /// <summary>A tool that counts how often it runs, across the silos of the process.</summary>
    private sealed class CountingTool : Conversations.Grains.Tools.ITool
    {
        public const string Name = "count_calls";

        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public Conversations.Grains.Tools.ToolDefinition Definition { get; } = new(
            Name, "Counts its calls.", System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone());

        public ValueTask<string> InvokeAsync(System.Text.Json.JsonElement arguments, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Interlocked.Increment(ref _calls).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
