using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Silo.Retention;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

/// <summary>
/// What every <see cref="IThreadIndex"/> (and the event log's <see cref="IEventLogCompaction"/>) owes the thread grain
/// and the listings, run against each provider by a sealed subclass that gives each test a database of its own.
/// </summary>
public abstract class ThreadIndexContract : IAsyncLifetime
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The index, history, event log and compaction of one migrated database of this test's.</summary>
    protected abstract Task<(IThreadIndex Index, IThreadHistory History, IEventLog Log, IEventLogCompaction Compaction)> OpenAsync();

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public abstract ValueTask DisposeAsync();

    // UTC with whole microseconds: what both providers store exactly (PostgreSQL keeps microseconds).
    private static readonly DateTimeOffset Created = new DateTimeOffset(2025, 3, 14, 7, 26, 53, 589, TimeSpan.Zero).AddTicks(7930);

    private static ThreadSummary Thread(string id, int updatedSecond, string? owner = null, Dictionary<string, string>? metadata = null) =>
        new(id, Created, Created.AddSeconds(updatedSecond), metadata ?? [], updatedSecond, $"title of {id}", $"preview of {id}") { Owner = owner };

    [Fact]
    public async Task A_row_reads_back_as_written_and_an_upsert_replaces_it()
    {
        var (index, _, _, _) = await OpenAsync();
        var written = Thread("thr_1", 5, owner: "user:ana", metadata: new() { ["project"] = "ünïcødé ✓", ["title"] = "Plans" });
        await index.UpsertAsync(written, Ct);
        AssertJsonEqual(written, await index.GetAsync("thr_1", Ct));

        var replaced = written with { MessageCount = 9, Title = null, LastMessagePreview = null, Metadata = new Dictionary<string, string>(), UpdatedAt = Created.AddSeconds(7) };
        await index.UpsertAsync(replaced, Ct);

        AssertJsonEqual(replaced, await index.GetAsync("thr_1", Ct));
        Assert.Null(await index.GetAsync("thr_none", Ct));
    }

    [Fact]
    public async Task Listings_are_newest_first_paged_by_cursor_or_offset_per_owner_and_filtered_by_metadata()
    {
        var (index, _, _, _) = await OpenAsync();
        await index.UpsertAsync(Thread("thr_a", 1, "user:ana", new() { ["project"] = "x" }), Ct);
        await index.UpsertAsync(Thread("thr_b", 3, "user:bo", new() { ["project"] = "x", ["tier"] = "gold" }), Ct);
        await index.UpsertAsync(Thread("thr_c", 2, "user:ana", new() { ["project"] = "y" }), Ct);
        await index.UpsertAsync(Thread("thr_d", 2, null, new() { ["project"] = "x", ["key with \"quotes\".and.dots"] = "v" }), Ct);

        async Task<string[]> IdsAsync(ThreadListQuery query) => [.. (await index.ListAsync(query, Ct)).Select(t => t.Id)];

        // thr_c and thr_d were updated at the same time: the larger id first.
        Assert.Equal(["thr_b", "thr_d", "thr_c", "thr_a"], await IdsAsync(new ThreadListQuery(10) { AnyOwner = true }));
        Assert.Equal(["thr_b", "thr_d"], await IdsAsync(new ThreadListQuery(2) { AnyOwner = true }));
        var page = await index.ListAsync(new ThreadListQuery(2) { AnyOwner = true }, Ct);
        Assert.Equal(["thr_c", "thr_a"], await IdsAsync(new ThreadListQuery(2) { AnyOwner = true, After = new ThreadListPosition(page[^1].UpdatedAt, page[^1].Id) }));
        Assert.Equal(["thr_c"], await IdsAsync(new ThreadListQuery(1) { AnyOwner = true, Offset = 2 }));

        Assert.Equal(["thr_c", "thr_a"], await IdsAsync(new ThreadListQuery(10) { Owner = "user:ana" }));
        Assert.Equal(["thr_d"], await IdsAsync(new ThreadListQuery(10) { Owner = null }));
        Assert.Empty(await IdsAsync(new ThreadListQuery(10) { Owner = "user:nobody" }));

        Assert.Equal(["thr_b", "thr_d", "thr_a"], await IdsAsync(new ThreadListQuery(10) { AnyOwner = true, Metadata = new Dictionary<string, string> { ["project"] = "x" } }));
        Assert.Equal(["thr_b"], await IdsAsync(new ThreadListQuery(10) { AnyOwner = true, Metadata = new Dictionary<string, string> { ["project"] = "x", ["tier"] = "gold" } }));
        Assert.Equal(["thr_d"], await IdsAsync(new ThreadListQuery(10) { AnyOwner = true, Metadata = new Dictionary<string, string> { ["key with \"quotes\".and.dots"] = "v" } }));
        Assert.Equal(["thr_a"], await IdsAsync(new ThreadListQuery(10) { Owner = "user:ana", Metadata = new Dictionary<string, string> { ["project"] = "x" } }));
        Assert.Empty(await IdsAsync(new ThreadListQuery(10) { AnyOwner = true, Metadata = new Dictionary<string, string> { ["project"] = "X" } }));
    }

    [Fact]
    public async Task Erase_removes_every_row_of_the_thread_and_nothing_of_another()
    {
        var (index, history, log, _) = await OpenAsync();
        foreach (var id in new[] { "thr_gone", "thr_kept" })
        {
            await index.UpsertAsync(Thread(id, 1), Ct);
            await history.AppendAsync(id, [UserMessage(1), AssistantMessage(2)], [Run(id, "run_1", RunStatuses.Completed)], Ct);
            await log.AppendAsync(Deltas(id, [1, 2, 3]), Ct);
        }

        await index.EraseAsync("thr_gone", Ct);
        await index.EraseAsync("thr_gone", Ct); // again: nothing left to erase

        Assert.Null(await index.GetAsync("thr_gone", Ct));
        Assert.Empty(await history.ReadMessagesAsync("thr_gone", 0, 10, Ct));
        Assert.Null(await history.ReadRunAsync("thr_gone", "run_1", Ct));
        Assert.Equal(0, await log.GetLastSequenceAsync("thr_gone", Ct));
        Assert.NotNull(await index.GetAsync("thr_kept", Ct));
        Assert.Equal(2, (await history.ReadMessagesAsync("thr_kept", 0, 10, Ct)).Count);
        Assert.Equal(3, await log.GetLastSequenceAsync("thr_kept", Ct));
    }

    [Fact]
    public async Task Compaction_deletes_old_events_in_batches_keeps_recent_ones_messages_and_threads_with_a_running_run()
    {
        var (_, history, log, compaction) = await OpenAsync();
        var now = DateTimeOffset.UtcNow;
        foreach (var id in new[] { "thr_idle", "thr_running" })
        {
            var old = Deltas(id, [1, 2, 3, 4, 5]).Select(e => e with { CreatedAt = now.AddDays(-3) });
            var recent = Deltas(id, [6, 7]).Select(e => e with { CreatedAt = now });
            await log.AppendAsync([.. old, .. recent], Ct);
            await history.AppendAsync(id, [UserMessage(1)], [Run(id, "run_1", id == "thr_idle" ? RunStatuses.Completed : RunStatuses.Running)], Ct);
        }

        var cutoff = now.AddDays(-1);
        Assert.Equal(2, await compaction.CompactAsync(cutoff, 2, Ct));
        Assert.Equal(2, await compaction.CompactAsync(cutoff, 2, Ct));
        Assert.Equal(1, await compaction.CompactAsync(cutoff, 2, Ct));
        Assert.Equal(0, await compaction.CompactAsync(cutoff, 2, Ct));

        Assert.Equal([6L, 7L], (await log.ReadAsync("thr_idle", 0, cancellationToken: Ct).ToListAsync(Ct)).Select(e => e.Sequence));
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L, 7L], (await log.ReadAsync("thr_running", 0, cancellationToken: Ct).ToListAsync(Ct)).Select(e => e.Sequence));
        Assert.Equal(7, await log.GetLastSequenceAsync("thr_idle", Ct));
        Assert.Single(await history.ReadMessagesAsync("thr_idle", 0, 10, Ct));
    }
}
