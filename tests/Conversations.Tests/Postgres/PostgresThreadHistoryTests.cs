using System.Net;
using System.Net.Sockets;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Silo.Storage.Postgres;
using Npgsql;
using Conversations.Tests.Storage;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Postgres;

/// <summary>The history contract on PostgreSQL, each test in a schema of its own, and what only PostgreSQL does.</summary>
public sealed class PostgresThreadHistoryTests : ThreadHistoryContract
{
    private PostgresFixture? _fixture;

    private PostgresFixture Fixture => _fixture ?? throw new InvalidOperationException("Not initialized.");

    public override async ValueTask InitializeAsync() => _fixture = await PostgresFixture.CreateAsync();

    public override async ValueTask DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }
    }

    protected override async Task<IThreadHistory> OpenHistoryAsync() => new PostgresThreadHistory(await Fixture.OpenMigratedAsync());

    [Fact]
    public async Task Appended_messages_and_runs_read_back_as_written()
    {
        var history = await OpenHistoryAsync();
        ThreadMessage[] messages = [UserMessage(1), AssistantMessage(2, MessageStatuses.Incomplete), ToolMessage(3)];
        RunRecord[] runs = [Run(ThreadId, "run_1", RunStatuses.Failed), Run(ThreadId, "run_2", RunStatuses.Completed, startedSecond: 5)];

        await history.AppendAsync(ThreadId, messages, runs, Ct);

        var read = await history.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(messages.Length, read.Count);
        for (var i = 0; i < messages.Length; i++)
        {
            AssertJsonEqual(messages[i], read[i]);
        }

        AssertJsonEqual(runs[0], await history.ReadRunAsync(ThreadId, "run_1", Ct));
        AssertJsonEqual(runs[1], await history.ReadRunAsync(ThreadId, "run_2", Ct));
        Assert.Equal(messages[1].ToolCalls, read[1].ToolCalls);
        Assert.Equal(3, await history.GetLastOrdinalAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task Messages_page_by_ordinal_and_threads_stay_apart()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [.. Enumerable.Range(1, 7).Select(i => UserMessage(i))], [], Ct);
        await history.AppendAsync("thr_2", [UserMessage(1), UserMessage(2)], [], Ct);
        await history.AppendAsync(ThreadId, [UserMessage(9), UserMessage(8)], [], Ct); // order comes from the ordinal

        Assert.Equal(new[] { 1, 2, 3 }, await OrdinalsAsync(history, 0, 3));
        Assert.Equal(new[] { 4, 5, 6 }, await OrdinalsAsync(history, 3, 3));
        Assert.Equal(new[] { 7, 8, 9 }, await OrdinalsAsync(history, 6, 100));
        Assert.Empty(await OrdinalsAsync(history, 9, 3));
        Assert.Empty(await history.ReadMessagesAsync("thr_none", 0, 10, Ct));
        Assert.Equal(9, await history.GetLastOrdinalAsync(ThreadId, Ct));
        Assert.Equal(2, await history.GetLastOrdinalAsync("thr_2", Ct));
        Assert.Equal(0, await history.GetLastOrdinalAsync("thr_none", Ct));
    }

    [Fact]
    public async Task Runs_are_replaced_by_id_and_the_running_ones_listed_oldest_first()
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(
            ThreadId,
            [],
            [Run(ThreadId, "run_late", startedSecond: 30), Run(ThreadId, "run_done", RunStatuses.Completed), Run(ThreadId, "run_early", startedSecond: 2)],
            Ct);
        await history.AppendAsync("thr_2", [], [Run("thr_2", "run_other")], Ct);

        Assert.Equal(["run_early", "run_late"], (await history.ReadUnfinishedRunsAsync(ThreadId, Ct)).Select(r => r.Id));

        var cancelled = Run(ThreadId, "run_early", RunStatuses.Cancelled, startedSecond: 2);
        await history.AppendAsync(ThreadId, [UserMessage(1)], [cancelled], Ct);

        AssertJsonEqual(cancelled, await history.ReadRunAsync(ThreadId, "run_early", Ct));
        Assert.Equal(["run_late"], (await history.ReadUnfinishedRunsAsync(ThreadId, Ct)).Select(r => r.Id));
        Assert.Empty(await history.ReadUnfinishedRunsAsync("thr_none", Ct));
        Assert.Equal(["run_other"], (await history.ReadUnfinishedRunsAsync("thr_2", Ct)).Select(r => r.Id));
    }

    [Fact]
    public async Task The_running_runs_query_uses_the_partial_index()
    {
        var database = await Fixture.OpenMigratedAsync();
        var history = new PostgresThreadHistory(database);
        await history.AppendAsync(ThreadId, [], [.. Enumerable.Range(1, 300).Select(i => Run(ThreadId, $"run_{i}", RunStatuses.Completed))], Ct);
        await history.AppendAsync(ThreadId, [], [Run(ThreadId, "run_now")], Ct);
        await PostgresTestBase.ExecuteAsync(database, "ANALYZE runs;");

        await using var connection = await database.OpenConnectionAsync(Ct);
        await using (var noSeqScan = new NpgsqlCommand("SET enable_seqscan = off;", connection))
        {
            await noSeqScan.ExecuteNonQueryAsync(Ct);
        }

        await using var explain = new NpgsqlCommand(
            "EXPLAIN SELECT body::text FROM runs WHERE thread_id = 'thr_1' AND (body ->> 'status') = 'running';", connection);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                plan.Add(reader.GetString(0));
            }
        }

        Assert.Contains("runs_running", string.Join("\n", plan), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2, "msg_new")] // the ordinal is taken
    [InlineData(4, "msg_2")] // the id is taken
    public async Task A_message_colliding_with_a_stored_one_is_a_conflict_and_nothing_of_the_write_is_stored(int ordinal, string id)
    {
        var history = await OpenHistoryAsync();
        await history.AppendAsync(ThreadId, [UserMessage(1), UserMessage(2)], [Run(ThreadId)], Ct);
        var colliding = UserMessage(ordinal) with { Id = id, Content = "from the other writer" };

        var conflict = await Assert.ThrowsAsync<HistoryConflictException>(() =>
            history.AppendAsync(ThreadId, [UserMessage(3), colliding], [Run(ThreadId, "run_1", RunStatuses.Completed), Run(ThreadId, "run_2")], Ct));

        Assert.Equal(ThreadId, conflict.ThreadId);
        Assert.Null(conflict.InnerException);
        Assert.Equal(new[] { 1, 2 }, await OrdinalsAsync(history, 0, 10));
        Assert.Equal("msg_2", (await history.ReadMessagesAsync(ThreadId, 1, 1, Ct))[0].Id);
        Assert.Equal(RunStatuses.Running, (await history.ReadRunAsync(ThreadId, "run_1", Ct))!.Status);
        Assert.Null(await history.ReadRunAsync(ThreadId, "run_2", Ct));
        Assert.Null(await history.FindMessageOrdinalAsync(ThreadId, "msg_3", Ct));
    }

    [Fact]
    public async Task Of_two_writers_appending_the_same_ordinal_at_once_one_wins()
    {
        var database = await Fixture.OpenMigratedAsync();
        var writers = new[] { new PostgresThreadHistory(database), new PostgresThreadHistory(Fixture.Open()) };
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var attempts = writers.Select((writer, i) => Task.Run(async () =>
        {
            await gate.Task;
            try
            {
                await writer.AppendAsync(ThreadId, [UserMessage(1) with { Id = $"msg_writer{i}" }], [], Ct);
                return true;
            }
            catch (HistoryConflictException)
            {
                return false;
            }
        }, Ct)).ToArray();
        gate.SetResult();
        var outcomes = await Task.WhenAll(attempts);

        Assert.Single(outcomes, won => won);
        var stored = Assert.Single(await writers[0].ReadMessagesAsync(ThreadId, 0, 10, Ct));
        Assert.Equal($"msg_writer{Array.IndexOf(outcomes, true)}", stored.Id);
    }

    [Fact]
    public async Task An_unreachable_server_is_reported_as_storage_unavailable_by_every_method()
    {
        await using var unreachable = OpenUnreachable();
        var history = new PostgresThreadHistory(unreachable);

        foreach (var call in EveryCall(history))
        {
            var error = await Assert.ThrowsAsync<StorageUnavailableException>(call);
            Assert.Null(error.InnerException); // nothing of the driver's crosses the grain boundary
            Assert.Contains("NpgsqlException", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_schema_that_was_never_migrated_is_reported_as_storage_unavailable()
    {
        var history = new PostgresThreadHistory(Fixture.Open());

        foreach (var call in EveryCall(history))
        {
            var error = await Assert.ThrowsAsync<StorageUnavailableException>(call);
            Assert.Contains("42P01", error.Message, StringComparison.Ordinal); // undefined_table
        }
    }

    [Fact]
    public async Task A_cancelled_call_is_a_cancellation_not_an_outage()
    {
        await using var unreachable = OpenUnreachable();
        var history = new PostgresThreadHistory(unreachable);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => history.ReadMessagesAsync(ThreadId, 0, 10, cancellation.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => history.AppendAsync(ThreadId, [UserMessage(1)], [], cancellation.Token));
    }

    /// <summary>A database on a loopback port nothing listens on: every connection attempt is refused at once.</summary>
    internal static PostgresDatabase OpenUnreachable()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var connection = new NpgsqlConnectionStringBuilder(PostgresFixture.DefaultConnectionString) { Port = port, Timeout = 3 };
        return new PostgresDatabase(connection.ConnectionString, "conv_unreachable");
    }

    private static Func<Task>[] EveryCall(IThreadHistory history) =>
    [
        () => history.ReadMessagesAsync(ThreadId, 0, 10, Ct),
        () => history.FindMessageOrdinalAsync(ThreadId, "msg_1", Ct),
        () => history.GetLastOrdinalAsync(ThreadId, Ct),
        () => history.ReadRunAsync(ThreadId, "run_1", Ct),
        () => history.ReadUnfinishedRunsAsync(ThreadId, Ct),
        () => history.AppendAsync(ThreadId, [UserMessage(1)], [Run(ThreadId)], Ct),
        () => history.RemoveAsync(ThreadId, 1, ["run_1"], Ct),
    ];

    private static async Task<int[]> OrdinalsAsync(IThreadHistory history, int after, int limit) =>
        [.. (await history.ReadMessagesAsync(ThreadId, after, limit, Ct)).Select(m => m.Ordinal)];
}
