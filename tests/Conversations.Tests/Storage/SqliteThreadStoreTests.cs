using Conversations.Grains.Abstractions.Runtime;
using Conversations.Silo.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Conversations.Tests.Storage;

public sealed class SqliteThreadStoreTests : ThreadStoreContract
{
    private readonly TempSqliteFile _file = new();

    protected override Type ConstraintViolation => typeof(SqliteException);

    protected override async Task<IThreadStore> OpenStoreAsync() => new SqliteThreadStore(await _file.OpenMigratedAsync());

    public override ValueTask DisposeAsync()
    {
        _file.Dispose();
        return ValueTask.CompletedTask;
    }
}
