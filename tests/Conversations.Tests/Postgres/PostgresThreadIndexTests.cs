using Conversations.Grains.Threads;
using Conversations.Silo.Retention;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Storage;

namespace Conversations.Tests.Postgres;

/// <summary>The thread index and compaction contract on PostgreSQL, each test in a schema of its own.</summary>
public sealed class PostgresThreadIndexTests : ThreadIndexContract
{
    private PostgresFixture? _fixture;

    public override async ValueTask InitializeAsync() => _fixture = await PostgresFixture.CreateAsync();

    public override async ValueTask DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }
    }

    protected override async Task<(IThreadIndex Index, IThreadHistory History, IEventLog Log, IEventLogCompaction Compaction)> OpenAsync()
    {
        var database = await (_fixture ?? throw new InvalidOperationException("Not initialized.")).OpenMigratedAsync();
        return (new PostgresThreadIndex(database), new PostgresThreadHistory(database), new PostgresEventLog(database), new PostgresEventCompaction(database));
    }
}
