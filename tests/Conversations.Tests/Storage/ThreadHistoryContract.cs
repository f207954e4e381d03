using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IThreadHistory"/> owes the thread grain, run against each provider by a sealed
/// subclass that gives each test a database of its own.
/// </summary>
public abstract class ThreadHistoryContract : IAsyncLifetime
{
    protected const string ThreadId = "thr_1";

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A history on this test's database, migrated.</summary>
    protected abstract Task<IThreadHistory> OpenHistoryAsync();

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public abstract ValueTask DisposeAsync();

    [Fact]
    public async Task Messages_come_back_in_order_paged_and_by_id()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [UserMessage(1), AssistantMessage(2)], [], Ct);
        await history.AppendAsync(ThreadId, [ToolMessage(3)], [], Ct);
        await history.AppendAsync("thr_other", [UserMessage(1)], [], Ct);

        Assert.Equal(["msg_1", "msg_2", "msg_3"], (await history.ReadMessagesAsync(ThreadId, 0, 10, Ct)).Select(m => m.Id));
        Assert.Equal(["msg_2"], (await history.ReadMessagesAsync(ThreadId, 1, 1, Ct)).Select(m => m.Id));
        AssertJsonEqual(AssistantMessage(2), (await history.ReadMessagesAsync(ThreadId, 1, 1, Ct))[0]);
        Assert.Equal(3, await history.FindMessageOrdinalAsync(ThreadId, "msg_3", Ct));
        Assert.Null(await history.FindMessageOrdinalAsync(ThreadId, "msg_9", Ct));
        Assert.Equal(3, await history.GetLastOrdinalAsync(ThreadId, Ct));
        Assert.Equal(0, await history.GetLastOrdinalAsync("thr_none", Ct));
    }

    [Fact]
    public async Task A_taken_ordinal_or_id_is_a_conflict_and_writes_nothing_of_the_batch()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [UserMessage(1)], [], Ct);

        // Ordinal 1 is taken: the new message at 2 and the run of the same batch must not be written either.
        await Assert.ThrowsAsync<HistoryConflictException>(() =>
            history.AppendAsync(ThreadId, [UserMessage(2) with { Id = "msg_new" }, UserMessage(1) with { Id = "msg_other" }], [Run(ThreadId)], Ct));
        await Assert.ThrowsAsync<HistoryConflictException>(() =>
            history.AppendAsync(ThreadId, [UserMessage(2) with { Id = "msg_1" }], [], Ct));

        Assert.Equal(["msg_1"], (await history.ReadMessagesAsync(ThreadId, 0, 10, Ct)).Select(m => m.Id));
        Assert.Null(await history.ReadRunAsync(ThreadId, "run_1", Ct));
    }

    [Fact]
    public async Task Runs_are_replaced_by_id_and_unfinished_ones_are_listed()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [], [Run(ThreadId, "run_1"), Run(ThreadId, "run_2")], Ct);
        Assert.Equal(["run_1", "run_2"], (await history.ReadUnfinishedRunsAsync(ThreadId, Ct)).Select(r => r.Id));

        var completed = Run(ThreadId, "run_1", RunStatuses.Completed);
        await history.AppendAsync(ThreadId, [], [completed], Ct);

        AssertJsonEqual(completed, await history.ReadRunAsync(ThreadId, "run_1", Ct));
        Assert.Equal(["run_2"], (await history.ReadUnfinishedRunsAsync(ThreadId, Ct)).Select(r => r.Id));
        Assert.Empty(await history.ReadUnfinishedRunsAsync("thr_other", Ct));
    }

    [Fact]
    public async Task Runs_are_listed_newest_first_in_pages()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [], [.. Enumerable.Range(1, 5).Select(i => Run(ThreadId, $"run_{i}", RunStatuses.Completed, startedSecond: i * 10))], Ct);
        await history.AppendAsync("thr_other", [], [Run("thr_other", "run_9")], Ct);
        await history.AppendAsync(ThreadId, [], [Run(ThreadId, "run_2", RunStatuses.Failed, startedSecond: 20)], Ct); // replaced, not moved

        Assert.Equal(["run_5", "run_4"], (await history.ReadRunsAsync(ThreadId, 0, 2, Ct)).Select(r => r.Id));
        Assert.Equal(["run_3", "run_2"], (await history.ReadRunsAsync(ThreadId, 2, 2, Ct)).Select(r => r.Id));
        Assert.Equal(["run_1"], (await history.ReadRunsAsync(ThreadId, 4, 2, Ct)).Select(r => r.Id));
        Assert.Empty(await history.ReadRunsAsync(ThreadId, 5, 2, Ct));
        Assert.Equal(RunStatuses.Failed, (await history.ReadRunsAsync(ThreadId, 3, 1, Ct))[0].Status);
        Assert.Empty(await history.ReadRunsAsync("thr_none", 0, 10, Ct));
    }

    [Fact]
    public async Task Remove_deletes_the_messages_from_an_ordinal_on_and_the_given_runs_of_one_thread()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [UserMessage(1), AssistantMessage(2), ToolMessage(3)], [Run(ThreadId, "run_1", RunStatuses.Completed), Run(ThreadId, "run_2")], Ct);
        await history.AppendAsync("thr_other", [UserMessage(1), UserMessage(2)], [Run("thr_other", "run_2")], Ct);

        await history.RemoveAsync(ThreadId, 2, ["run_2", "run_none"], Ct);

        Assert.Equal(["msg_1"], (await history.ReadMessagesAsync(ThreadId, 0, 10, Ct)).Select(m => m.Id));
        Assert.Equal(1, await history.GetLastOrdinalAsync(ThreadId, Ct));
        Assert.Null(await history.FindMessageOrdinalAsync(ThreadId, "msg_2", Ct));
        Assert.NotNull(await history.ReadRunAsync(ThreadId, "run_1", Ct));
        Assert.Null(await history.ReadRunAsync(ThreadId, "run_2", Ct));
        Assert.Empty(await history.ReadUnfinishedRunsAsync(ThreadId, Ct));
        Assert.Equal(2, await history.GetLastOrdinalAsync("thr_other", Ct));
        Assert.NotNull(await history.ReadRunAsync("thr_other", "run_2", Ct));

        // The freed ordinals and ids can be written again; removing nothing is no error.
        await history.AppendAsync(ThreadId, [UserMessage(2)], [], Ct);
        await history.RemoveAsync(ThreadId, 10, [], Ct);
        Assert.Equal(["msg_1", "msg_2"], (await history.ReadMessagesAsync(ThreadId, 0, 10, Ct)).Select(m => m.Id));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.RemoveAsync(ThreadId, 0, [], Ct));
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected_before_anything_is_written()
    {
        var history = await OpenHistoryAsync();

        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync("", [UserMessage(1)], [], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1), UserMessage(0)], [], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1), UserMessage(1)], [], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1), UserMessage(2) with { Id = "msg_1" }], [], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1) with { Id = "" }], [], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1)], [Run("thr_2")], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.AppendAsync(ThreadId, [UserMessage(1)], [Run(ThreadId), Run(ThreadId)], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.ReadMessagesAsync(ThreadId, -1, 10, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.ReadMessagesAsync(ThreadId, 0, 0, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.FindMessageOrdinalAsync(ThreadId, "", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => history.ReadRunAsync("", "run_1", Ct));
        await history.AppendAsync(ThreadId, [], [], Ct);

        Assert.Equal(0, await history.GetLastOrdinalAsync(ThreadId, Ct));
        Assert.Null(await history.ReadRunAsync(ThreadId, "run_1", Ct));
    }
}
