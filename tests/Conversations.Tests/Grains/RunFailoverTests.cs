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
    public async Task A_run_whose_silo_crashed_is_failed_as_interrupted_on_a_live_silo_woken_by_its_reminder()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("never", "sent").HangAfter(1));
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

        var failed = Assert.Single((await grains.StoredEventsAsync(threadId, lastSequence)).OfType<RunFailed>());
        Assert.Equal((run.RunId, RunErrorCodes.Interrupted), (failed.RunId, failed.Error.Code));
        Assert.Null((await grains.ReadStateAsync(threadId)).State!.ActiveRunId);
        await EventuallyAsync(() => ActiveRunRemindersAsync(grains, threadId), n => n == 0, "the reminder is removed", grains);

        // Callers see the same, and the thread runs again.
        Assert.Null((await thread.GetAsync(Ct))?.ActiveRunId);
        Assert.Equal(RunStatuses.Failed, (await thread.GetRunAsync(run.RunId, Ct))?.Status);
        var replayed = await TakeAsync(thread, lastSequence, 1);
        Assert.Equal(failed.Sequence, Assert.IsType<RunFailed>(Assert.Single(replayed)).Sequence);
        model.Enqueue(ScriptedResponse.Text("Back."));
        var next = await SendAsync(thread, "Again?");
        Assert.True(next.StartSequence > failed.Sequence, $"The next run starts at {next.StartSequence}, not after {failed.Sequence}.");
        Assert.IsType<RunCompleted>((await WaitForRunEndAsync(thread, next))[^1]);
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

    private static Task<long> ActiveRunRemindersAsync(GrainCluster grains, string threadId) =>
        ScalarAsync<long>(grains.Database, $"SELECT count(*) FROM orleansreminderstable WHERE grainid LIKE '%{threadId}' AND remindername = '{ThreadGrain.ActiveRunReminder}';");
}
