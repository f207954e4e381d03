using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Grains;

/// <summary>
/// A change that stored its history rows and not its state write (a silo that died between the two, a write that
/// failed): the next activation reconciles, keeping what the state's run produced and removing what was never accepted.
/// </summary>
public sealed class ThreadReconcileTests : GrainTestBase
{
    [Fact]
    public async Task A_send_whose_state_write_never_happened_leaves_nothing_and_its_retry_stores_the_message_once()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        var first = await SendAsync(thread, "What is 2 + 2?"); // the demo model: a completed run and its events
        await WaitForRunEndAsync(thread, first);
        await grains.Cluster.DeactivateAsync(thread);
        var stateBefore = await grains.ReadStateAsync(threadId);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);
        var messageCount = stateBefore.State!.MessageCount;
        var messagesBefore = await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct);

        // What SendMessageAsync stores first (the user message and the running run), and then no state write: the
        // silo died, or the write failed and the caller was told so (503).
        var now = DateTimeOffset.UtcNow;
        var runId = Ids.NewRunId();
        var message = new ThreadMessage(Ids.NewMessageId(), messageCount + 1, MessageRoles.User, "Lost?", now) { RunId = runId };
        var lost = new RunRecord(runId, threadId, "default", message.Id, now) { StartSequence = lastSequence + 1 };
        await grains.History.AppendAsync(threadId, [message], [lost], Ct);

        // The next activation removes what the state never accepted: the history is as before, and nothing was told.
        var snapshot = await thread.GetAsync(Ct);
        Assert.NotNull(snapshot);
        Assert.Equal((messageCount, null, first.RunId), (snapshot.MessageCount, snapshot.ActiveRunId, snapshot.LastRunId));
        Assert.Equal(messagesBefore.Select(m => m.Id), (await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct)).Select(m => m.Id));
        Assert.Null(await grains.History.ReadRunAsync(threadId, runId, Ct));
        Assert.Null(await thread.GetRunAsync(runId, Ct));
        Assert.Empty(await grains.History.ReadUnfinishedRunsAsync(threadId, Ct));
        Assert.Empty(await grains.StoredEventsAsync(threadId, lastSequence));
        Assert.Equal(messageCount, (await grains.ReadStateAsync(threadId)).State!.MessageCount);

        // The caller retries with the same run id: one user message, one run, and the numbering goes on without a gap.
        var retried = Assert.IsType<SendMessageResult.Accepted>(await thread.SendMessageAsync(new SendMessage("Lost?") { RunId = runId }, Ct));
        Assert.Equal(runId, retried.RunId);
        Assert.IsType<RunCompleted>((await WaitForRunEndAsync(thread, retried))[^1]);
        var messages = await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct);
        Assert.Single(messages, m => m.Content == "Lost?");
        Assert.Equal(Enumerable.Range(1, messages.Count), messages.Select(m => m.Ordinal));
        Assert.Equal(messages.Count, (await thread.GetAsync(Ct))?.MessageCount);
        Assert.Equal(RunStatuses.Completed, (await thread.GetRunAsync(runId, Ct))?.Status);
        Assert.Empty((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
    }

    [Fact]
    public async Task A_run_whose_silo_died_keeps_the_output_it_stored_and_under_the_fail_policy_fails_as_interrupted()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Settings = new Dictionary<string, string?> { ["Runs:OnLostRun"] = "fail" } });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        await grains.Cluster.DeactivateAsync(thread);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);

        // A run started (its state write stored: the user message counted, the run active), streamed part of an answer
        // and stored it as a message without the state write that counts it; then the silo died.
        var now = DateTimeOffset.UtcNow;
        var runId = Ids.NewRunId();
        var question = new ThreadMessage(Ids.NewMessageId(), 2, MessageRoles.User, "Question", now) { RunId = runId };
        var partial = new ThreadMessage(Ids.NewMessageId(), 3, MessageRoles.Assistant, "Half an ans", now) { RunId = runId, Status = MessageStatuses.Incomplete };
        var running = new RunRecord(runId, threadId, "default", question.Id, now) { StartSequence = lastSequence + 1 };
        var state = await grains.ReadStateAsync(threadId);
        state.State = state.State! with { MessageCount = 2, ActiveRunId = runId, LastRunId = runId, ReservedSequence = lastSequence + 1024 };
        await grains.History.AppendAsync(threadId, [question], [running], Ct);
        await grains.WriteStateAsync(threadId, state);
        await grains.History.AppendAsync(threadId, [partial], [], Ct);

        // The first call activates the thread; a watcher from the last logged event hears how the run ended.
        var watched = await TakeAsync(thread, lastSequence, 1);

        var failed = Assert.IsType<RunFailed>(Assert.Single(watched));
        Assert.Equal((runId, RunErrorCodes.Interrupted), (failed.RunId, failed.Error.Code));
        Assert.True(failed.Sequence > lastSequence, $"run.failed has sequence {failed.Sequence}, not after {lastSequence}");
        var snapshot = await thread.GetAsync(Ct);
        Assert.NotNull(snapshot);
        Assert.Equal((3, null), (snapshot.MessageCount, snapshot.ActiveRunId));
        var page = await thread.GetMessagesAsync(new MessagePageRequest(null, 100), Ct);
        Assert.Equal(["Hello", "Question", "Half an ans"], page?.Data.Select(m => m.Content));
        var run = await thread.GetRunAsync(runId, Ct);
        Assert.Equal((RunStatuses.Failed, RunErrorCodes.Interrupted), (run?.Status, run?.Error?.Code));
        Assert.NotNull(run?.EndedAt);

        // All of it stored: the state, the run row, the event.
        var stored = await grains.ReadStateAsync(threadId);
        Assert.Equal((3, null), (stored.State!.MessageCount, stored.State!.ActiveRunId));
        Assert.Empty(await grains.History.ReadUnfinishedRunsAsync(threadId, Ct));
        var logged = Assert.IsType<RunFailed>(Assert.Single(await grains.StoredEventsAsync(threadId, lastSequence)));
        Assert.Equal((failed.Sequence, runId, RunErrorCodes.Interrupted), (logged.Sequence, logged.RunId, logged.Error.Code));

        // Reconciled once: another activation finds nothing to do, and the thread runs again.
        await grains.Cluster.DeactivateAsync(thread);
        var next = await SendAsync(thread, "And 3 + 3?");
        Assert.Equal(failed.Sequence + 1, next.StartSequence);
        Assert.IsType<RunCompleted>((await WaitForRunEndAsync(thread, next))[^1]);
        Assert.Single((await grains.StoredEventsAsync(threadId)).OfType<RunFailed>());
        Assert.Equal(await grains.History.GetLastOrdinalAsync(threadId, Ct), (await thread.GetAsync(Ct))?.MessageCount);
    }

    [Fact]
    public async Task A_run_whose_silo_died_is_resumed_from_what_it_stored_by_the_next_activation()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("The answer, resumed."));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        await grains.Cluster.DeactivateAsync(thread);
        var lastSequence = await grains.Log.GetLastSequenceAsync(threadId, Ct);

        // A run asked for a tool, whose result was recorded; then its silo died in the next model call.
        var now = DateTimeOffset.UtcNow;
        var runId = Ids.NewRunId();
        var question = new ThreadMessage(Ids.NewMessageId(), 2, MessageRoles.User, "What is 17 * 23?", now) { RunId = runId };
        var asked = new ThreadMessage(Ids.NewMessageId(), 3, MessageRoles.Assistant, "", now)
        {
            RunId = runId,
            ToolCalls = [new ToolCallInfo("call_1", "calculate", """{"expression":"17*23"}""")],
            FinishReason = "tool_calls",
        };
        var result = new ThreadMessage(Ids.NewMessageId(), 4, MessageRoles.Tool, "391", now) { RunId = runId, ToolCallId = "call_1", Name = "calculate" };
        var running = new RunRecord(runId, threadId, "default", question.Id, now) { StartSequence = lastSequence + 1, Model = "fake-model" };
        var state = await grains.ReadStateAsync(threadId);
        state.State = state.State! with { MessageCount = 3, ActiveRunId = runId, LastRunId = runId, ReservedSequence = lastSequence + 1024 };
        await grains.History.AppendAsync(threadId, [question, asked], [running], Ct);
        await grains.WriteStateAsync(threadId, state);
        await grains.History.AppendAsync(threadId, [result], [], Ct); // recorded, the state write not

        // The next activation goes on with a model call over what was recorded; the tool is not called again.
        var events = await WaitForRunEndAsync(thread, new SendMessageResult.Accepted(runId, question.Id, lastSequence + 1));

        var resuming = Assert.IsType<AgentStatusChanged>(events[0]);
        Assert.Equal(AgentStatuses.Resuming, resuming.Status);
        Assert.IsType<RunCompleted>(events[^1]);
        Assert.DoesNotContain(events, e => e is ToolCallStarted or ToolCallCompleted or RunFailed);
        var request = Assert.Single(model.Requests);
        Assert.Equal(("tool", "391"), (request.Messages[^1]?["role"]?.ToString(), request.Messages[^1]?["content"]?.ToString()));
        var run = await thread.GetRunAsync(runId, Ct);
        Assert.Equal((RunStatuses.Completed, 1), (run?.Status, run?.Resumes));
        Assert.Equal(
            ["Hello", "What is 17 * 23?", "", "391", "The answer, resumed."],
            (await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct)).Select(m => m.Content));
        Assert.Equal((5, null), ((await thread.GetAsync(Ct))?.MessageCount, (await thread.GetAsync(Ct))?.ActiveRunId));
    }

    [Fact]
    public async Task A_create_whose_state_write_never_happened_does_not_stand_in_the_way_of_the_next()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var threadId = Ids.NewThreadId();
        var thread = grains.Thread(threadId);
        await grains.History.AppendAsync(threadId, [new ThreadMessage(Ids.NewMessageId(), 1, MessageRoles.User, "Left over", DateTimeOffset.UtcNow)], [], Ct);

        Assert.Null(await thread.GetAsync(Ct)); // the thread was never created
        var created = await thread.CreateAsync(new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] }, Ct);

        Assert.NotNull(created);
        Assert.Equal(["Hello"], (await grains.History.ReadMessagesAsync(threadId, 0, 10, Ct)).Select(m => m.Content));
        Assert.Equal(1, (await grains.ReadStateAsync(threadId)).State!.MessageCount);
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
