using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Silo.Storage.Postgres;
using static Conversations.Tests.Postgres.PostgresSamples;

namespace Conversations.Tests.Postgres;

public sealed class PostgresEventLogTests : PostgresTestBase
{
    private const string ThreadId = "thr_1";

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
            Assert.Equal(JsonSerializer.Serialize(events[i], ContractJson.Options), JsonSerializer.Serialize(read[i], ContractJson.Options));
        }
    }

    [Fact]
    public async Task Rows_hold_the_type_and_the_body_verbatim_with_the_discriminator_first()
    {
        var database = await Fixture.OpenMigratedAsync();
        var events = OneOfEachEvent(ThreadId);
        await new PostgresEventLog(database).AppendAsync(events, Ct);

        await using var command = database.DataSource.CreateCommand("SELECT sequence, type, body::text, created_at FROM events ORDER BY sequence;");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = 0;
        while (await reader.ReadAsync(Ct))
        {
            var expected = events[rows++];
            Assert.Equal(expected.Sequence, reader.GetInt64(0));
            Assert.Equal(expected.Type, reader.GetString(1));
            Assert.Equal(JsonSerializer.Serialize(expected, ContractJson.Options), reader.GetString(2)); // json, not jsonb: verbatim
            Assert.StartsWith($$"""{"type":"{{expected.Type}}",""", reader.GetString(2), StringComparison.Ordinal);
            Assert.Equal(expected.CreatedAt.UtcTicks / 10, reader.GetFieldValue<DateTimeOffset>(3).UtcTicks / 10); // microseconds
        }

        Assert.Equal(events.Count, rows);
    }

    [Fact]
    public async Task Appending_a_stored_sequence_again_is_a_no_op_and_a_batch_keeps_the_first_of_a_repeat()
    {
        var log = await OpenLogAsync();
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3], "first"), Ct);

        await log.AppendAsync(Deltas(ThreadId, [2, 3, 4, 5], "second"), Ct);
        await log.AppendAsync([.. Deltas(ThreadId, [6], "third"), .. Deltas(ThreadId, [6, 1], "fourth")], Ct);

        var read = await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct);
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
        Assert.Empty(await SequencesAsync(log, 10, long.MaxValue));
        Assert.Empty(await SequencesAsync(log, 5, 5));
        Assert.Empty(await SequencesAsync(log, 7, 3));
        Assert.Empty(await log.ReadAsync("thr_none", 0, cancellationToken: Ct).ToListAsync(Ct));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Read_crosses_page_boundaries_without_gaps_or_repeats_and_sees_events_appended_meanwhile(int pageSize)
    {
        var log = await OpenLogAsync(pageSize);
        await log.AppendAsync(Deltas(ThreadId, [1, 2, 3, 5, 8]), Ct); // gaps are allowed

        var read = new List<long>();
        await foreach (var e in log.ReadAsync(ThreadId, 0, 12, Ct))
        {
            read.Add(e.Sequence);
            if (e.Sequence == 1)
            {
                await log.AppendAsync(Deltas(ThreadId, [9, 12, 13]), Ct); // the reader holds no connection between pages
            }
        }

        Assert.Equal([1, 2, 3, 5, 8, 9, 12], read);
    }

    [Fact]
    public async Task Last_sequence_is_the_highest_stored_or_zero()
    {
        var log = await OpenLogAsync();

        Assert.Equal(0, await log.GetLastSequenceAsync(ThreadId, Ct));
        await log.AppendAsync([.. Deltas(ThreadId, [7, 3]), .. Deltas("thr_2", [40])], Ct);

        Assert.Equal(7, await log.GetLastSequenceAsync(ThreadId, Ct));
        Assert.Equal(40, await log.GetLastSequenceAsync("thr_2", Ct));
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
    public async Task An_unreachable_server_is_reported_as_storage_unavailable()
    {
        await using var unreachable = PostgresThreadHistoryTests.OpenUnreachable();
        var log = new PostgresEventLog(unreachable);

        var append = await Assert.ThrowsAsync<StorageUnavailableException>(() => log.AppendAsync(Deltas(ThreadId, [1]), Ct));
        var last = await Assert.ThrowsAsync<StorageUnavailableException>(() => log.GetLastSequenceAsync(ThreadId, Ct));
        var read = await Assert.ThrowsAsync<StorageUnavailableException>(async () => await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct));

        Assert.All(new[] { append, last, read }, e => Assert.Null(e.InnerException));
    }

    [Fact]
    public async Task A_cancelled_read_throws_a_cancellation()
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

    private async Task<IEventLog> OpenLogAsync(int? pageSize = null)
    {
        var database = await Fixture.OpenMigratedAsync();
        return pageSize is { } size ? new PostgresEventLog(database) { PageSize = size } : new PostgresEventLog(database);
    }

    private static long[] Range(long first, long last) => [.. Enumerable.Range((int)first, (int)(last - first + 1)).Select(i => (long)i)];

    private static async Task<long[]> SequencesAsync(IEventLog log, long after, long to) =>
        [.. (await log.ReadAsync(ThreadId, after, to, Ct).ToListAsync(Ct)).Select(e => e.Sequence)];
}
