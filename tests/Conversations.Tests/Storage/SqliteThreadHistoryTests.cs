using Conversations.Grains.Threads;
using Conversations.Silo.Storage.Sqlite;

namespace Conversations.Tests.Storage;

public sealed class SqliteThreadHistoryTests : ThreadHistoryContract
{
    private readonly TempSqliteFile _file = new();

    protected override async Task<IThreadHistory> OpenHistoryAsync() => new SqliteThreadHistory(await _file.OpenMigratedAsync());

    public override ValueTask DisposeAsync()
    {
        _file.Dispose();
        return ValueTask.CompletedTask;
    }
}
