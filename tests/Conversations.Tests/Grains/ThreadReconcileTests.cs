using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Tests.Grains;

/// <summary>A silo that died between a change's history write and its state write: the next activation reconciles.</summary>
public sealed class ThreadReconcileTests : GrainTestBase
{
    [Fact]
    public async Task Rows_stored_without_their_state_write_are_counted_and_their_running_run_fails_as_interrupted()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        var first = await SendAsync(thread, "What is 2 + 2?"); // the demo model: a completed run and its events
        await WaitForRunEndAsync(thread, first);
        await grains.Cluster.DeactivateAsync(thread);
        Assert.Empty(await grains.ActivationsAsync(thread));
        var stateBefore = await grains.ReadStateAsync(threadId);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);
        var messageCount = stateBefore.State!.MessageCount;
        Assert.Equal(messageCount, await grains.History.GetLastOrdinalAsync(threadId, Ct));

        // What SendMessageAsync stores first (the user message and the running run), and then no state write: the silo died.
        var now = DateTimeOffset.UtcNow;
        var runId = Ids.NewRunId();
        var message = new ThreadMessage(Ids.NewMessageId(), messageCount + 1, MessageRoles.User, "Lost?", now) { RunId = runId };
        var lost = new RunRecord(runId, threadId, "default", message.Id, now) { StartSequence = lastSequence + 1 };
        await grains.History.AppendAsync(threadId, [message], [lost], Ct);

        // The first call activates the thread; it watches from the last event the log had.
        var watched = await TakeAsync(thread, lastSequence, 1);

        var failed = Assert.IsType<RunFailed>(Assert.Single(watched));
        Assert.Equal((runId, RunErrorCodes.Interrupted), (failed.RunId, failed.Error.Code));
        Assert.True(failed.Sequence > lastSequence, $"run.failed has sequence {failed.Sequence}, not after {lastSequence}");

        var snapshot = await thread.GetAsync(Ct);
        Assert.NotNull(snapshot);
        Assert.Equal((messageCount + 1, null), (snapshot.MessageCount, snapshot.ActiveRunId));
        var page = await thread.GetMessagesAsync(new MessagePageRequest(null, 100), Ct);
        Assert.Equal(message.Id, page?.LastId);
        var run = await thread.GetRunAsync(runId, Ct);
        Assert.Equal((RunStatuses.Failed, RunErrorCodes.Interrupted), (run?.Status, run?.Error?.Code));
        Assert.NotNull(run?.EndedAt);

        // All of it stored: the state, the run row, the event.
        var stored = await grains.ReadStateAsync(threadId);
        Assert.Equal((messageCount + 1, null), (stored.State!.MessageCount, stored.State!.ActiveRunId));
        Assert.Equal(RunStatuses.Failed, (await grains.History.ReadRunAsync(threadId, runId, Ct))?.Status);
        Assert.Empty(await grains.History.ReadUnfinishedRunsAsync(threadId, Ct));
        var logged = Assert.IsType<RunFailed>(Assert.Single(await grains.StoredEventsAsync(threadId, lastSequence)));
        Assert.Equal((failed.Sequence, runId, RunErrorCodes.Interrupted), (logged.Sequence, logged.RunId, logged.Error.Code));

        // Reconciled once: another activation finds nothing to do, and the thread runs again.
        await grains.Cluster.DeactivateAsync(thread);
        var next = await SendAsync(thread, "And 3 + 3?");
        Assert.Equal(failed.Sequence + 1, next.StartSequence);
        var ended = await WaitForRunEndAsync(thread, next);
        Assert.IsType<RunCompleted>(ended[^1]);
        Assert.Single((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
        Assert.Equal(await grains.History.GetLastOrdinalAsync(threadId, Ct), (await thread.GetAsync(Ct))?.MessageCount);
    }
    [Fact]
    public async Task A_run_whose_end_was_stored_without_the_state_write_stays_as_it_ended()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        await grains.Cluster.DeactivateAsync(thread);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);

        // A run started (its state write stored), answered and ended: the end's history row was stored, then the silo
        // died before the state write that clears the active run.
        var now = DateTimeOffset.UtcNow;
        var runId = Ids.NewRunId();
        var question = new ThreadMessage(Ids.NewMessageId(), 2, MessageRoles.User, "Question", now) { RunId = runId };
        var answer = new ThreadMessage(Ids.NewMessageId(), 3, MessageRoles.Assistant, "Answer", now) { RunId = runId };
        var completed = new RunRecord(runId, threadId, "default", question.Id, now)
        {
            Status = RunStatuses.Completed,
            StopReason = "stop",
            EndedAt = now.AddSeconds(1),
            StartSequence = lastSequence + 1,
        };
        var state = await grains.ReadStateAsync(threadId);
        state.State = state.State! with { MessageCount = 3, ActiveRunId = runId, LastRunId = runId, ReservedSequence = lastSequence + 1024 };
        await grains.History.AppendAsync(threadId, [question, answer], [completed], Ct);
        await grains.WriteStateAsync(threadId, state);

        var snapshot = await thread.GetAsync(Ct);

        Assert.NotNull(snapshot);
        Assert.Equal((3, null, runId), (snapshot.MessageCount, snapshot.ActiveRunId, snapshot.LastRunId));
        Assert.Null((await grains.ReadStateAsync(threadId)).State!.ActiveRunId);
        var run = await thread.GetRunAsync(runId, Ct);
        Assert.Equal((RunStatuses.Completed, null), (run?.Status, run?.Error));
        Assert.Equal(RunStatuses.Completed, (await grains.History.ReadRunAsync(threadId, runId, Ct))?.Status);
        Assert.Empty((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
    }
}
