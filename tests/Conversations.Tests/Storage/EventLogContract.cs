using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Threads;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IEventLog"/> owes the streams, run against each provider by a sealed subclass that
/// gives each test a database of its own.
/// </summary>
public abstract class EventLogContract : IAsyncLifetime
{
    protected const string ThreadId = "thr_1";

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A log on this test's database, migrated, reading <paramref name="pageSize"/> rows per query (null for the provider's default).</summary>
    protected abstract Task<IEventLog> OpenLogAsync(int? pageSize = null);

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public abstract ValueTask DisposeAsync();

    [Fact]
    public async Task Every_event_kind_round_trips_with_its_type()
    {
        var log = await OpenLogAsync();
        var events = OneOfEachEvent(ThreadId);
        var declared = typeof(ThreadEvent).GetCustomAttributes(typeof(JsonDerivedTypeAttribute), inherit: false)
            .Cast<JsonDerivedTypeAttribute>().Select(a => a.DerivedType).ToHashSet();
        Assert.True(declared.SetEquals(events.Select(e => e.GetType())), "The sample must hold one event of every declared kind.");

        await log.AppendAsync(events, Ct);
        var read = await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(events.Count, read.Count);
        for (var i = 0; i < events.Count; i++)
        {
            Assert.IsType(events[i].GetType(), read[i]);
            AssertJsonEqual(events[i], read[i]);
        }

        var status = Assert.IsType<AgentStatusChanged>(read.Single(e => e is AgentStatusChanged));
        Assert.Equal(["depth", "nested", "note", "ok", "ratio", "tools"], status.Details!.Keys.Order(StringComparer.Ordinal));
        var completed = Assert.IsType<MessageCompleted>(read.Single(e => e is MessageCompleted));
        Assert.Equal(((MessageCompleted)events.Single(e => e is MessageCompleted)).ToolCalls, completed.ToolCalls);
    }

    [Fact]
    public async Task Appending_a_stored_sequence_again_is_a_no_op_and_a_batch_keeps_the_first_of_a_repeat()
    {
        var log = await OpenLogAsync();
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3], "first"), Ct);

        await log.AppendAsync(Deltas(ThreadId, [2, 3, 4, 5], "second"), Ct);
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3], "first"), Ct);
        await log.AppendAsync([.. Deltas(ThreadId, [6], "third"), .. Deltas(ThreadId, [6, 1], "fourth")], Ct);

        var read = await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6 }, read.Select(e => e.Sequence));
        Assert.Equal(["first1", "first2", "first3", "second4", "second5", "third6"], read.Cast<TextDelta>().Select(e => e.Text));
        Assert.Equal(6, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task Read_returns_the_range_after_the_first_bound_up_to_the_second_of_one_thread()
    {
        var log = await OpenLogAsync();
        await log.AppendAsync([.. Deltas(ThreadId, [6, 7, 8, 9, 10]), .. Deltas("thr_2", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])], Ct);
        await log.AppendAsync(Deltas(ThreadId, [5, 4, 3, 2, 1]), Ct); // out of order: order comes from the sequence

        Assert.Equal(Range(4, 7), await SequencesAsync(log, 3, 7));
        Assert.Equal(Range(1, 10), await SequencesAsync(log, 0, long.MaxValue));
        Assert.Equal(Range(10, 10), await SequencesAsync(log, 9, long.MaxValue));
        Assert.Equal(Range(1, 1), await SequencesAsync(log, 0, 1));
        Assert.Empty(await SequencesAsync(log, 10, long.MaxValue));
        Assert.Empty(await SequencesAsync(log, 5, 5));
        Assert.Empty(await SequencesAsync(log, 7, 3));
        Assert.Empty(await log.ReadAsync("thr_none", 0, cancellationToken: Ct).ToListAsync(Ct));
        Assert.All(await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct), e => Assert.Equal(ThreadId, e.ThreadId));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public async Task Read_crosses_page_boundaries_without_gaps_or_repeats(int pageSize)
    {
        var log = await OpenLogAsync(pageSize);
        await log.AppendAsync(Deltas(ThreadId, Enumerable.Range(1, 10).Select(i => (long)i)), Ct);

        Assert.Equal(Range(1, 10), await SequencesAsync(log, 0, long.MaxValue));
        Assert.Equal(Range(3, 9), await SequencesAsync(log, 2, 9));
        Assert.Equal(Range(6, 10), await SequencesAsync(log, 5, 10));
    }

    [Fact]
    public async Task Events_appended_while_reading_are_read_when_in_range()
    {
        var log = await OpenLogAsync(pageSize: 2);
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3]), Ct);

        var read = new List<long>();
        await foreach (var e in log.ReadAsync(ThreadId, 0, 5, Ct))
        {
            read.Add(e.Sequence);
            if (e.Sequence == 1)
            {
                // The reader holds no connection between pages, so this write does not wait for it.
                await log.AppendAsync(Deltas(ThreadId, [4, 5, 6]), Ct);
            }
        }

        Assert.Equal(Range(1, 5), read);
    }

    [Fact]
    public async Task Last_sequence_is_the_highest_stored_or_zero()
    {
        var log = await OpenLogAsync();

        Assert.Equal(0, await log.GetLastSequenceAsync(ThreadId, Ct));
        await log.AppendAsync([.. Deltas(ThreadId, [7, 3]), .. Deltas("thr_2", [40])], Ct);

        Assert.Equal(7, await log.GetLastSequenceAsync(ThreadId, Ct));
        Assert.Equal(40, await log.GetLastSequenceAsync("thr_2", Ct));
        Assert.Equal(0, await log.GetLastSequenceAsync("thr_none", Ct));
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected_and_a_bad_batch_writes_nothing()
    {
        var log = await OpenLogAsync();

        Assert.ThrowsAny<ArgumentException>(() => log.ReadAsync("", 0, cancellationToken: Ct));
        Assert.ThrowsAny<ArgumentException>(() => log.ReadAsync(ThreadId, -1, cancellationToken: Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.GetLastSequenceAsync("", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.AppendAsync([.. Deltas(ThreadId, [1, 2]), .. Deltas(ThreadId, [0])], Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.AppendAsync(Deltas("", [1]), Ct));
        await log.AppendAsync([], Ct);

        Assert.Equal(0, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task A_cancelled_read_throws()
    {
        var log = await OpenLogAsync();
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3]), Ct);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in log.ReadAsync(ThreadId, 0, cancellationToken: cancellation.Token))
            {
            }
        });
    }

    protected static long[] Range(long first, long last) => [.. Enumerable.Range((int)first, (int)(last - first + 1)).Select(i => (long)i)];

    protected static async Task<long[]> SequencesAsync(IEventLog log, long after, long to) =>
        [.. (await log.ReadAsync(ThreadId, after, to, Ct).ToListAsync(Ct)).Select(e => e.Sequence)];
}
