using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Grains;

/// <summary>
/// What a message does while another run is active: the five multitask strategies, and optimistic sends. The model
/// holds its answers until the test lets them go on (<see cref="ScriptedResponse.HoldAfter"/>), so what overlaps what
/// is decided by the test, not by timing.
/// </summary>
public sealed class MultitaskTests : GrainTestBase
{
    [Fact]
    public async Task Enqueue_runs_messages_in_order_after_the_active_run_and_a_queued_run_can_be_cancelled_before_it_starts()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("first ", "answer").HoldAfter(2, release.Task), ScriptedResponse.Text("third answer"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);

        var first = await SendAsync(thread, "First");
        await model.WaitForRequestAsync(1, Ct);
        var second = Assert.IsType<SendMessageResult.Accepted>(await thread.SendMessageAsync(Enqueued("Second"), Ct));
        var third = Assert.IsType<SendMessageResult.Accepted>(await thread.SendMessageAsync(Enqueued("Third"), Ct));

        Assert.Equal((RunStatuses.Queued, RunStatuses.Queued), (second.Status, third.Status));
        Assert.Equal([second.RunId, third.RunId], (await thread.GetAsync(Ct))!.QueuedRunIds);
        Assert.Equal(RunStatuses.Queued, (await thread.GetRunAsync(third.RunId, Ct))?.Status);
        Assert.Equal([second.RunId, third.RunId], (await grains.ReadStateAsync(created.Id)).State!.Queue.Select(q => q.RunId)); // stored

        // The second is cancelled while it waits: it never starts.
        var dequeued = Assert.IsType<CancelRunResult.Dequeued>(await thread.CancelRunAsync(second.RunId, Ct));
        Assert.Equal(RunStatuses.Cancelled, dequeued.Run.Status);
        Assert.Equal([third.RunId], (await thread.GetAsync(Ct))!.QueuedRunIds);

        release.SetResult();
        var events = await WaitForRunEndAsync(thread, third with { StartSequence = first.StartSequence });

        Assert.Equal(
            [(EventTypes.RunQueued, second.RunId), (EventTypes.RunQueued, third.RunId), (EventTypes.RunCancelled, second.RunId),
             (EventTypes.RunCompleted, first.RunId), (EventTypes.RunStarted, third.RunId), (EventTypes.RunCompleted, third.RunId)],
            events.Where(e => e is RunQueued or RunStarted or RunCompleted or RunCancelled && e.Sequence > first.StartSequence).Select(e => (e.Type, e.RunId)));
        Assert.Equal(RunStatuses.Cancelled, (await thread.GetRunAsync(second.RunId, Ct))?.Status);
        Assert.Equal(RunStatuses.Completed, (await thread.GetRunAsync(third.RunId, Ct))?.Status);
        var messages = await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct);
        Assert.Equal(
            [(MessageRoles.User, "First"), (MessageRoles.Assistant, "first answer"), (MessageRoles.User, "Third"), (MessageRoles.Assistant, "third answer")],
            messages.Select(m => (m.Role, m.Content)));
        Assert.Equal(third.UserMessageId, messages[2].Id); // the id announced when it was queued
        Assert.Empty((await thread.GetAsync(Ct))!.QueuedRunIds);
    }

    [Fact]
    public async Task A_queue_survives_its_activation_and_goes_on_in_the_next()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Hang(), ScriptedResponse.Text("queued answer"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var first = await SendAsync(thread, "First");
        await model.WaitForRequestAsync(1, Ct);
        var queued = Assert.IsType<SendMessageResult.Accepted>(await thread.SendMessageAsync(Enqueued("Later"), Ct));

        // The activation goes (the active run ends as interrupted); the next one starts the queued run by itself.
        await grains.Cluster.DeactivateAsync(thread);
        var events = await WaitForRunEndAsync(thread, queued with { StartSequence = first.StartSequence });

        Assert.Equal((first.RunId, RunErrorCodes.Interrupted), events.OfType<RunFailed>().Select(f => (f.RunId, f.Error.Code)).Single());
        Assert.IsType<RunCompleted>(events[^1]);
        Assert.Equal(RunStatuses.Completed, (await thread.GetRunAsync(queued.RunId, Ct))?.Status);
        Assert.Equal(["First", "Later", "queued answer"], (await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct)).Select(m => m.Content));
        Assert.Empty((await grains.ReadStateAsync(created.Id)).State!.Queue);
    }

    [Fact]
    public async Task Interrupt_cancels_the_active_run_keeping_its_partial_output_and_starts_the_new_one()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("partial", " never").HangAfter(2), ScriptedResponse.Text("new answer"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var first = await SendAsync(thread, "First");
        await TakeUntilAsync(thread, first.StartSequence - 1, e => e is TextDelta { Text: "partial" });

        var second = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Second") { MultitaskStrategy = MultitaskStrategies.Interrupt }, Ct));
        var events = await WaitForRunEndAsync(thread, second with { StartSequence = first.StartSequence });

        var cancelled = Assert.Single(events.OfType<RunCancelled>());
        Assert.Equal((first.RunId, "interrupted by a newer message"), (cancelled.RunId, cancelled.Reason));
        Assert.True(cancelled.Sequence < events.OfType<RunStarted>().Single(e => e.RunId == second.RunId).Sequence);
        Assert.IsType<RunCompleted>(events[^1]);
        Assert.Equal(RunStatuses.Cancelled, (await thread.GetRunAsync(first.RunId, Ct))?.Status);
        var messages = await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct);
        Assert.Equal(
            [("First", MessageStatuses.Completed), ("partial", MessageStatuses.Cancelled), ("Second", MessageStatuses.Completed), ("new answer", MessageStatuses.Completed)],
            messages.Select(m => (m.Content, m.Status)));
    }

    [Fact]
    public async Task Rollback_cancels_the_active_run_and_removes_its_messages_and_the_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("kept answer"), ScriptedResponse.Text("doomed").HangAfter(2), ScriptedResponse.Text("instead"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        await WaitForRunEndAsync(thread, await SendAsync(thread, "Kept"));
        var doomed = await SendAsync(thread, "Doomed");
        await TakeUntilAsync(thread, doomed.StartSequence - 1, e => e is TextDelta { Text: "doomed" });

        var instead = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Instead") { MultitaskStrategy = MultitaskStrategies.Rollback }, Ct));
        var events = await WaitForRunEndAsync(thread, instead with { StartSequence = doomed.StartSequence });

        var rolledBack = Assert.Single(events.OfType<RunRolledBack>());
        Assert.Equal((doomed.RunId, 3, 2), (rolledBack.RunId, rolledBack.FromOrdinal, rolledBack.RemovedMessages));
        Assert.Equal(doomed.RunId, Assert.Single(events.OfType<RunCancelled>()).RunId);
        Assert.Null(await thread.GetRunAsync(doomed.RunId, Ct));
        Assert.Null(await grains.History.ReadRunAsync(created.Id, doomed.RunId, Ct));
        var messages = await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct);
        Assert.Equal(["Kept", "kept answer", "Instead", "instead"], messages.Select(m => m.Content));
        Assert.Equal([1, 2, 3, 4], messages.Select(m => m.Ordinal));
        Assert.Equal(4, (await thread.GetAsync(Ct))?.MessageCount);
        // The model's context for the new run did not hold the removed turn.
        var lastRequest = model.Requests[^1];
        Assert.DoesNotContain(lastRequest.Messages, m => m?["content"]?.ToString() is "Doomed" or "doomed");
    }

    [Fact]
    public async Task Steer_joins_the_active_run_after_its_tool_calls_and_is_answered_in_it()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", """{"expression":"2+2"}""")).HoldAfter(1, release.Task),
            ScriptedResponse.Text("4, and in words: four"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var run = await SendAsync(thread, "What is 2 + 2?");
        await model.WaitForRequestAsync(1, Ct);

        var steer = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Also say it in words.") { MultitaskStrategy = MultitaskStrategies.Steer }, Ct));
        Assert.True(steer.Steered);
        Assert.Equal(run.RunId, steer.RunId);
        release.SetResult();
        var events = await WaitForRunEndAsync(thread, run);

        var steered = Assert.Single(events.OfType<RunSteered>());
        Assert.Equal(steer.UserMessageId, steered.MessageId);
        var toolDone = events.OfType<ToolCallCompleted>().Single();
        Assert.True(toolDone.Sequence < steered.Sequence, "The steer joined before the tool call ended.");
        Assert.IsType<RunCompleted>(events[^1]);
        Assert.Single(events.OfType<RunStarted>()); // one run
        var messages = await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct);
        Assert.Equal(
            [MessageRoles.User, MessageRoles.Assistant, MessageRoles.Tool, MessageRoles.User, MessageRoles.Assistant],
            messages.Select(m => m.Role));
        Assert.Equal((steer.UserMessageId, "Also say it in words.", run.RunId), (messages[3].Id, messages[3].Content, messages[3].RunId));
        // The second model call saw the tool result and then the steer.
        var second = model.Requests[1].Messages;
        Assert.Equal("Also say it in words.", second[^1]?["content"]?.ToString());
        Assert.Equal("tool", second[^2]?["role"]?.ToString());
        Assert.Empty((await grains.ReadStateAsync(created.Id)).State!.Queue);
    }

    [Fact]
    public async Task A_steer_sent_while_the_last_answer_streams_gets_an_answer_of_its_own_in_the_same_run()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("Paris", ".").HoldAfter(2, release.Task), ScriptedResponse.Text("About 2.1 million."));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var run = await SendAsync(thread, "Capital of France?");
        await model.WaitForRequestAsync(1, Ct);

        var steer = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("And its population?") { MultitaskStrategy = MultitaskStrategies.Steer }, Ct));
        release.SetResult();
        var events = await WaitForRunEndAsync(thread, run);

        Assert.True(steer.Steered);
        Assert.Single(events.OfType<RunSteered>());
        Assert.Equal(2, model.Requests.Count);
        Assert.Equal(
            ["Capital of France?", "Paris.", "And its population?", "About 2.1 million."],
            (await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct)).Select(m => m.Content));
    }

    [Fact]
    public async Task Reject_answers_with_the_active_run_and_an_optimistic_send_fails_when_the_thread_moved_on()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Text("one"), ScriptedResponse.Hang());
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);
        var first = await SendAsync(thread, "First");
        var firstEvents = await WaitForRunEndAsync(thread, first);
        var lastSequence = firstEvents[^1].Sequence;
        var lastMessageId = (await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct))[^1].Id;

        var staleSequence = Assert.IsType<SendMessageResult.Conflict>(
            await thread.SendMessageAsync(new SendMessage("Stale") { ExpectedLastSequence = lastSequence - 1 }, Ct));
        var staleMessage = Assert.IsType<SendMessageResult.Conflict>(
            await thread.SendMessageAsync(new SendMessage("Stale") { ExpectedLastMessageId = "msg_other" }, Ct));
        Assert.Equal(("expectedLastSequence", lastSequence, lastMessageId), (staleSequence.Field, staleSequence.LastSequence, staleSequence.LastMessageId));
        Assert.Equal("expectedLastMessageId", staleMessage.Field);

        var second = Assert.IsType<SendMessageResult.Accepted>(
            await thread.SendMessageAsync(new SendMessage("Current") { ExpectedLastSequence = lastSequence, ExpectedLastMessageId = lastMessageId }, Ct));
        var rejected = Assert.IsType<SendMessageResult.Rejected>(await thread.SendMessageAsync(new SendMessage("Too soon"), Ct));

        Assert.Equal(second.RunId, rejected.ActiveRunId);
        Assert.Equal(["First", "one", "Current"], (await grains.History.ReadMessagesAsync(created.Id, 0, 100, Ct)).Select(m => m.Content));
    }

    private static SendMessage Enqueued(string content) => new(content) { MultitaskStrategy = MultitaskStrategies.Enqueue };

    /// <summary>Watches until an event matches, then stops.</summary>
    private static async Task TakeUntilAsync(IThreadGrain thread, long afterSequence, Func<ThreadEvent, bool> match)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestTimeouts.Guard());
        await foreach (var next in thread.WatchAsync(afterSequence, stop.Token))
        {
            if (match(next))
            {
                return;
            }
        }
    }
}
