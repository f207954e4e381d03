using System.Globalization;
using Conversations.Silo.Storage.Sqlite;
using Conversations.Grains.Threads;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Storage;

public sealed class SqliteEventLogTests : EventLogContract
{
    private readonly TempSqliteFile _file = new();

    protected override async Task<IEventLog> OpenLogAsync(int? pageSize = null)
    {
        var database = await _file.OpenMigratedAsync();
        return pageSize is { } size ? new SqliteEventLog(database) { PageSize = size } : new SqliteEventLog(database);
    }

    public override ValueTask DisposeAsync()
    {
        _file.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Rows_hold_the_type_and_a_body_with_the_discriminator_and_no_derived_members()
    {
        var database = await _file.OpenMigratedAsync();
        var events = OneOfEachEvent(ThreadId);
        await new SqliteEventLog(database).AppendAsync(events, Ct);

        using var connection = await database.OpenConnectionAsync(Ct);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sequence, type, body, created_at FROM events ORDER BY sequence;";
        using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = 0;
        while (await reader.ReadAsync(Ct))
        {
            var expected = events[rows++];
            Assert.Equal(expected.Sequence, reader.GetInt64(0));
            Assert.Equal(expected.Type, reader.GetString(1));
            var body = reader.GetString(2);
            Assert.StartsWith($$"""{"type":"{{expected.Type}}",""", body, StringComparison.Ordinal);
            Assert.DoesNotContain("isTerminal", body, StringComparison.Ordinal);
            Assert.Equal(expected.CreatedAt, DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture));
        }

        Assert.Equal(events.Count, rows);
    }
}
