using Conversations.Grains.Threads;
using Conversations.Silo.Retention;
using Conversations.Silo.Storage.Sqlite;

namespace Conversations.Tests.Storage;

public sealed class SqliteThreadIndexTests : ThreadIndexContract
{
    private readonly TempSqliteFile _file = new();

    protected override async Task<(IThreadIndex Index, IThreadHistory History, IEventLog Log, IEventLogCompaction Compaction)> OpenAsync()
    {
        var database = await _file.OpenMigratedAsync();
        return (new SqliteThreadIndex(database), new SqliteThreadHistory(database), new SqliteEventLog(database), new SqliteEventCompaction(database));
    }

    public override ValueTask DisposeAsync()
    {
        _file.Dispose();
        return ValueTask.CompletedTask;
    }
}
