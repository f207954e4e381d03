using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Storage.Sqlite;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

public sealed class SqlitePersistenceTests
{
    private const string ThreadId = "thr_1";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Data_survives_closing_everything_and_reopening_the_file()
    {
        using var file = new TempSqliteFile();
        ThreadMessage[] messages = [UserMessage(1), AssistantMessage(2), ToolMessage(3)];
        var run = Run(ThreadId, status: RunStatuses.Completed);
        var events = OneOfEachEvent(ThreadId);
        using (var first = await file.OpenMigratedAsync())
        {
            var history = new SqliteThreadHistory(first);
            await history.AppendAsync(ThreadId, [messages[0]], [run with { Status = RunStatuses.Running }], Ct);
            await history.AppendAsync(ThreadId, messages[1..], [run], Ct);
            await new SqliteEventLog(first).AppendAsync(events, Ct);
        } // disposing clears the pool: no connection to the file stays open

        using var second = new SqliteDatabase(file.FilePath);
        await second.MigrateAsync(Ct);
        var reopened = new SqliteThreadHistory(second);
        var log = new SqliteEventLog(second);

        var readMessages = await reopened.ReadMessagesAsync(ThreadId, 0, 10, Ct);
        Assert.Equal(3, readMessages.Count);
        for (var i = 0; i < messages.Length; i++)
        {
            AssertJsonEqual(messages[i], readMessages[i]);
        }

        Assert.Equal(3, await reopened.GetLastOrdinalAsync(ThreadId, Ct));
        AssertJsonEqual(run, await reopened.ReadRunAsync(ThreadId, run.Id, Ct));
        Assert.Empty(await reopened.ReadUnfinishedRunsAsync(ThreadId, Ct));
        Assert.Equal(events.Count, await log.GetLastSequenceAsync(ThreadId, Ct));
        var readEvents = await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct);
        AssertJsonEqual(events, readEvents);
    }
}
