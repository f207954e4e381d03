using System.Text.Json;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Storage;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Postgres;

/// <summary>The event log contract on PostgreSQL, each test in a schema of its own, and what only PostgreSQL does.</summary>
public sealed class PostgresEventLogTests : EventLogContract
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
    public async Task An_unreachable_server_is_reported_as_storage_unavailable()
    {
        await using var unreachable = PostgresThreadHistoryTests.OpenUnreachable();
        var log = new PostgresEventLog(unreachable);

        var append = await Assert.ThrowsAsync<StorageUnavailableException>(() => log.AppendAsync(Deltas(ThreadId, [1]), Ct));
        var last = await Assert.ThrowsAsync<StorageUnavailableException>(() => log.GetLastSequenceAsync(ThreadId, Ct));
        var read = await Assert.ThrowsAsync<StorageUnavailableException>(async () => await log.ReadAsync(ThreadId, 0, cancellationToken: Ct).ToListAsync(Ct));

        Assert.All(new[] { append, last, read }, e => Assert.Null(e.InnerException));
    }

    protected override async Task<IEventLog> OpenLogAsync(int? pageSize = null)
    {
        var database = await Fixture.OpenMigratedAsync();
        return pageSize is { } size ? new PostgresEventLog(database) { PageSize = size } : new PostgresEventLog(database);
    }
}
