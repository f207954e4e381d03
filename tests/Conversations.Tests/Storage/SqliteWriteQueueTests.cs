using Conversations.Grains.Threads;
using Conversations.Silo.Storage.Sqlite;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

/// <summary>
/// Every SQLite write goes through the file's queue, many writes to one transaction, each in a savepoint: writes
/// queued together commit together, and one that fails takes none of its statements and none of the others' with it.
/// </summary>
public sealed class SqliteWriteQueueTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly TempSqliteFile _file = new();

    [Fact]
    public async Task Hundreds_of_writes_queued_at_once_all_commit_and_a_conflicting_one_fails_alone_and_leaves_nothing()
    {
        var database = await _file.OpenMigratedAsync();
        var history = new SqliteThreadHistory(database);
        const int threads = 300; // more than one transaction's worth (SqliteWriter.MaxBatch)

        // Queued back to back, without waiting: the first append of each thread, then one that adds ordinal 2
        // and repeats ordinal 1, which must fail without leaving its ordinal 2 behind.
        var first = Enumerable.Range(0, threads).Select(i => history.AppendAsync($"thr_{i}", [UserMessage(1)], [], Ct)).ToList();
        var conflicting = Enumerable.Range(0, threads).Select(i => history.AppendAsync($"thr_{i}", [AssistantMessage(2), UserMessage(1)], [], Ct)).ToList();
        var third = Enumerable.Range(0, threads).Select(i => history.AppendAsync($"thr_{i}", [AssistantMessage(2)], [], Ct)).ToList();

        await Task.WhenAll(first);
        foreach (var write in conflicting)
        {
            await Assert.ThrowsAsync<HistoryConflictException>(() => write);
        }

        await Task.WhenAll(third);
        for (var i = 0; i < threads; i++)
        {
            var stored = await history.ReadMessagesAsync($"thr_{i}", 0, 10, Ct);
            Assert.Equal([1, 2], stored.Select(m => m.Ordinal));
            AssertJsonEqual(AssistantMessage(2), stored[1]);
        }
    }

    [Fact]
    public async Task A_write_that_throws_is_rolled_back_to_its_savepoint_and_its_exception_reaches_its_caller()
    {
        var database = await _file.OpenMigratedAsync();
        var history = new SqliteThreadHistory(database);
        var before = history.AppendAsync("thr_a", [UserMessage(1)], [], Ct);
        var failing = database.WriteAsync<int>((connection, transaction) =>
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "DELETE FROM messages;";
            command.ExecuteNonQuery();
            throw new InvalidOperationException("after a statement");
        }, Ct);
        var after = history.AppendAsync("thr_b", [UserMessage(1)], [], Ct);

        await before;
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        Assert.Equal("after a statement", thrown.Message);
        await after;
        Assert.Single(await history.ReadMessagesAsync("thr_a", 0, 10, Ct));
        Assert.Single(await history.ReadMessagesAsync("thr_b", 0, 10, Ct));
    }

    public void Dispose() => _file.Dispose();
}
