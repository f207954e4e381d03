using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using System.Data.Common;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IThreadStore"/> owes the grains, run against each provider by a sealed subclass that
/// gives each test a database of its own.
/// </summary>
public abstract class ThreadStoreContract : IAsyncLifetime
{
    protected const string ThreadId = "thr_1";

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The exception the provider's driver throws for a violated constraint.</summary>
    protected abstract Type ConstraintViolation { get; }

    /// <summary>A store on this test's database, migrated; each call opens the database anew, as another node would.</summary>
    protected abstract Task<IThreadStore> OpenStoreAsync();

    /// <summary>Asserts a stored state reads back equal: by default as the same JSON text.</summary>
    protected virtual void AssertSameState(ThreadGrainState expected, ThreadGrainState actual) => AssertJsonEqual(expected, actual);

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public abstract ValueTask DisposeAsync();

    [Fact]
    public async Task State_messages_and_runs_round_trip_exactly()
    {
        var store = await OpenStoreAsync();
        var state = State(ThreadId, messageCount: 3, activeRunId: "run_1");
        ThreadMessage[] messages = [UserMessage(1), AssistantMessage(2), ToolMessage(3)];
        RunRecord[] runs = [Run(ThreadId, "run_0", RunStatuses.Failed), Run(ThreadId, "run_1")];

        var version = await store.WriteAsync(new ThreadWrite(state, 0) { Messages = messages, Runs = runs }, Ct);

        Assert.Equal(1, version);
        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.NotNull(read);
        Assert.Equal(1, read.Version);
        AssertSameState(state, read.State);
        Assert.Equal(state.CreatedAt, read.State.CreatedAt);
        Assert.Equal(state.CreatedAt.Offset, read.State.CreatedAt.Offset);
        Assert.Equal(state.Metadata.OrderBy(p => p.Key), read.State.Metadata.OrderBy(p => p.Key));

        var readMessages = await store.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(messages.Length, readMessages.Count);
        for (var i = 0; i < messages.Length; i++)
        {
            AssertJsonEqual(messages[i], readMessages[i]);
        }

        Assert.Equal(messages[1].ToolCalls, readMessages[1].ToolCalls); // ToolCallInfo records compare by value
        Assert.Equal(messages[1].Usage, readMessages[1].Usage);

        foreach (var run in runs)
        {
            var readRun = await store.ReadRunAsync(ThreadId, run.Id, Ct);
            Assert.Equal(run, readRun); // RunRecord holds only value members, so record equality is exact
        }
    }

    [Fact]
    public async Task Unknown_thread_message_and_run_read_as_null_or_empty()
    {
        var store = await OpenStoreAsync();
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 1), 0) { Messages = [UserMessage(1)], Runs = [Run(ThreadId)] }, Ct);

        Assert.Null(await store.ReadAsync("thr_other", Ct));
        Assert.Empty(await store.ReadMessagesAsync("thr_other", 0, 10, Ct));
        Assert.Null(await store.FindMessageOrdinalAsync(ThreadId, "msg_nope", Ct));
        Assert.Null(await store.FindMessageOrdinalAsync("thr_other", "msg_1", Ct));
        Assert.Null(await store.ReadRunAsync(ThreadId, "run_nope", Ct));
        Assert.Null(await store.ReadRunAsync("thr_other", "run_1", Ct));
    }

    [Fact]
    public async Task Each_write_increments_the_version()
    {
        var store = await OpenStoreAsync();

        var versions = new List<long>();
        for (var expected = 0L; expected < 4; expected++)
        {
            versions.Add(await store.WriteAsync(new ThreadWrite(State(ThreadId, (int)expected), expected), Ct));
        }

        Assert.Equal([1L, 2L, 3L, 4L], versions);
        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.Equal(4, read!.Version);
        Assert.Equal(3, read.State.MessageCount);
    }

    [Fact]
    public async Task A_stale_write_conflicts_and_changes_nothing()
    {
        var store = await OpenStoreAsync();
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 1, "run_1"), 0) { Messages = [UserMessage(1)], Runs = [Run(ThreadId)] }, Ct);
        var current = State(ThreadId, 2, "run_1");
        await store.WriteAsync(new ThreadWrite(current, 1) { Messages = [AssistantMessage(2, MessageStatuses.Incomplete)] }, Ct);

        var stale = new ThreadWrite(State(ThreadId, 3) with { Metadata = new Dictionary<string, string>() }, 1)
        {
            Messages = [UserMessage(1) with { Content = "rewritten" }, AssistantMessage(2), ToolMessage(3)],
            Runs = [Run(ThreadId, "run_1", RunStatuses.Completed), Run(ThreadId, "run_2")],
        };
        var conflict = await Assert.ThrowsAsync<StorageConflictException>(() => store.WriteAsync(stale, Ct));

        Assert.Equal(ThreadId, conflict.ThreadId);
        Assert.Equal(1, conflict.ExpectedVersion);
        Assert.Equal(2, conflict.ActualVersion);
        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.Equal(2, read!.Version);
        AssertSameState(current, read.State);
        var messages = await store.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(2, messages.Count);
        AssertJsonEqual(UserMessage(1), messages[0]);
        AssertJsonEqual(AssistantMessage(2, MessageStatuses.Incomplete), messages[1]);
        Assert.Equal(Run(ThreadId), await store.ReadRunAsync(ThreadId, "run_1", Ct));
        Assert.Null(await store.ReadRunAsync(ThreadId, "run_2", Ct));
    }

    [Fact]
    public async Task Expected_version_zero_on_an_existing_thread_conflicts()
    {
        var store = await OpenStoreAsync();
        var original = State(ThreadId, 1);
        await store.WriteAsync(new ThreadWrite(original, 0) { Messages = [UserMessage(1)] }, Ct);

        var conflict = await Assert.ThrowsAsync<StorageConflictException>(() => store.WriteAsync(
            new ThreadWrite(State(ThreadId, 0) with { CreatedAt = T0.AddDays(1) }, 0) { Messages = [UserMessage(1) with { Content = "other" }] },
            Ct));

        Assert.Equal(0, conflict.ExpectedVersion);
        Assert.Equal(1, conflict.ActualVersion);
        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.Equal(1, read!.Version);
        AssertSameState(original, read.State);
        AssertJsonEqual(UserMessage(1), Assert.Single(await store.ReadMessagesAsync(ThreadId, 0, 10, Ct)));
    }

    [Fact]
    public async Task A_nonzero_expected_version_on_a_missing_thread_conflicts_without_creating_it()
    {
        var store = await OpenStoreAsync();

        var conflict = await Assert.ThrowsAsync<StorageConflictException>(() =>
            store.WriteAsync(new ThreadWrite(State(ThreadId, 1), 3) { Messages = [UserMessage(1)] }, Ct));

        Assert.Equal(3, conflict.ExpectedVersion);
        Assert.Null(conflict.ActualVersion);
        Assert.Null(await store.ReadAsync(ThreadId, Ct));
        Assert.Empty(await store.ReadMessagesAsync(ThreadId, 0, 10, Ct));
    }

    [Fact]
    public async Task Of_two_concurrent_writers_with_the_same_expected_version_exactly_one_wins()
    {
        // Two stores on the same database, as two nodes would have.
        var stores = new[] { await OpenStoreAsync(), await OpenStoreAsync() };
        await stores[0].WriteAsync(new ThreadWrite(State(ThreadId), 0), Ct);

        const int Rounds = 25;
        for (var expected = 1L; expected <= Rounds; expected++)
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var writes = stores.Select((store, writer) => Task.Run(async () =>
            {
                await gate.Task;
                var ordinal = (int)expected;
                var write = new ThreadWrite(State(ThreadId, ordinal) with { LastRunId = $"writer_{writer}" }, expected)
                {
                    Messages = [UserMessage(ordinal) with { Content = $"from writer {writer}" }],
                    Runs = [Run(ThreadId, $"run_{writer}_{expected}")],
                };
                try
                {
                    return (Writer: writer, Version: (long?)await store.WriteAsync(write, Ct), Conflict: (StorageConflictException?)null);
                }
                catch (StorageConflictException e)
                {
                    return (Writer: writer, Version: null, Conflict: e);
                }
            }, Ct)).ToArray();
            gate.SetResult();
            var results = await Task.WhenAll(writes);

            var winner = Assert.Single(results, r => r.Version is not null);
            var loser = Assert.Single(results, r => r.Conflict is not null);
            Assert.Equal(expected + 1, winner.Version);
            Assert.Equal(expected + 1, loser.Conflict!.ActualVersion);
            var read = await stores[0].ReadAsync(ThreadId, Ct);
            Assert.Equal(expected + 1, read!.Version);
            Assert.Equal($"writer_{winner.Writer}", read.State.LastRunId);
            var message = Assert.Single(await stores[1].ReadMessagesAsync(ThreadId, (int)expected - 1, 10, Ct));
            Assert.Equal($"from writer {winner.Writer}", message.Content);
            Assert.NotNull(await stores[0].ReadRunAsync(ThreadId, $"run_{winner.Writer}_{expected}", Ct));
            Assert.Null(await stores[0].ReadRunAsync(ThreadId, $"run_{loser.Writer}_{expected}", Ct));
        }
    }

    [Fact]
    public async Task Messages_page_in_ordinal_order_after_an_ordinal()
    {
        var store = await OpenStoreAsync();
        // Written out of order and over several writes, so the order can only come from the ordinal.
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 4), 0) { Messages = [UserMessage(4), UserMessage(2), UserMessage(3), UserMessage(1)] }, Ct);
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 10), 1) { Messages = [.. Enumerable.Range(5, 6).Reverse().Select(i => UserMessage(i))] }, Ct);

        Assert.Equal(new[] { 1, 2, 3, 4 }, Ordinals(await store.ReadMessagesAsync(ThreadId, 0, 4, Ct)));
        Assert.Equal(new[] { 5, 6, 7, 8 }, Ordinals(await store.ReadMessagesAsync(ThreadId, 4, 4, Ct)));
        Assert.Equal(new[] { 9, 10 }, Ordinals(await store.ReadMessagesAsync(ThreadId, 8, 4, Ct)));
        Assert.Empty(await store.ReadMessagesAsync(ThreadId, 10, 4, Ct));
        Assert.Equal(new[] { 4 }, Ordinals(await store.ReadMessagesAsync(ThreadId, 3, 1, Ct)));
        Assert.Equal(Enumerable.Range(1, 10), Ordinals(await store.ReadMessagesAsync(ThreadId, 0, int.MaxValue, Ct)));
        Assert.Equal(7, await store.FindMessageOrdinalAsync(ThreadId, "msg_7", Ct));

        static int[] Ordinals(IReadOnlyList<ThreadMessage> messages) => [.. messages.Select(m => m.Ordinal)];
    }

    [Fact]
    public async Task A_message_written_again_at_its_ordinal_replaces_the_stored_one()
    {
        var store = await OpenStoreAsync();
        var partial = AssistantMessage(2, MessageStatuses.Incomplete, "Hel") with { ToolCalls = null, Usage = null, FinishReason = null };
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 2), 0) { Messages = [UserMessage(1), partial], Runs = [Run(ThreadId)] }, Ct);

        var completed = AssistantMessage(2, MessageStatuses.Completed, "Hello, world");
        await store.WriteAsync(new ThreadWrite(State(ThreadId, 2), 1) { Messages = [completed], Runs = [Run(ThreadId, status: RunStatuses.Completed)] }, Ct);

        var messages = await store.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(2, messages.Count);
        AssertJsonEqual(UserMessage(1), messages[0]);
        AssertJsonEqual(completed, messages[1]);
        Assert.Equal(MessageStatuses.Completed, messages[1].Status);
        Assert.Equal(2, await store.FindMessageOrdinalAsync(ThreadId, "msg_2", Ct));
        Assert.Equal(Run(ThreadId, status: RunStatuses.Completed), await store.ReadRunAsync(ThreadId, "run_1", Ct));
    }

    [Fact]
    public async Task A_write_that_fails_midway_changes_nothing()
    {
        var store = await OpenStoreAsync();
        var original = State(ThreadId, 2);
        await store.WriteAsync(new ThreadWrite(original, 0) { Messages = [UserMessage(1), UserMessage(2)] }, Ct);

        // msg_1 moved to ordinal 3 violates UNIQUE (thread_id, id) after the state row was already updated.
        var write = new ThreadWrite(State(ThreadId, 3), 1) { Messages = [UserMessage(2) with { Content = "changed" }, UserMessage(1) with { Ordinal = 3 }] };
        var error = await Assert.ThrowsAnyAsync<DbException>(() => store.WriteAsync(write, Ct));
        Assert.IsType(ConstraintViolation, error);

        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.Equal(1, read!.Version);
        AssertSameState(original, read.State);
        var messages = await store.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(2, messages.Count);
        AssertJsonEqual(UserMessage(2), messages[1]);
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected()
    {
        var store = await OpenStoreAsync();

        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.ReadMessagesAsync(ThreadId, 0, 0, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.ReadMessagesAsync(ThreadId, -1, 10, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.ReadMessagesAsync("", 0, 10, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.ReadAsync("", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.FindMessageOrdinalAsync(ThreadId, "", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.ReadRunAsync(ThreadId, "", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), -1), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(new ThreadWrite(State(""), 0), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(
            new ThreadWrite(State(ThreadId), 0) { Messages = [UserMessage(1), UserMessage(1) with { Id = "msg_other" }] }, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(
            new ThreadWrite(State(ThreadId), 0) { Messages = [UserMessage(0)] }, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(
            new ThreadWrite(State(ThreadId), 0) { Runs = [Run("thr_other")] }, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(
            new ThreadWrite(State(ThreadId), 0) { Runs = [Run(ThreadId), Run(ThreadId)] }, Ct));

        Assert.Null(await store.ReadAsync(ThreadId, Ct)); // none of the rejected writes wrote anything
    }
}
