using System.Globalization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Orleans.Storage;

namespace Conversations.Tests.Storage;

/// <summary>The embedded mode's Orleans grain storage on the SQLite file, and the upgrade of files the old runtime wrote.</summary>
public sealed class SqliteGrainStorageTests : IDisposable
{
    private static readonly GrainId Thread = GrainId.Create("thread", "thr_1");

    private readonly TempSqliteFile _file = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task State_round_trips_and_a_stale_etag_never_overwrites()
    {
        var storage = new SqliteGrainStorage(await _file.OpenMigratedAsync(), TimeProvider.System);
        var first = new GrainState<ThreadGrainState>();
        await storage.ReadStateAsync("thread", Thread, first);
        Assert.False(first.RecordExists);
        Assert.Null(first.State!.Id);

        first.State = new ThreadGrainState { Id = "thr_1", MessageCount = 2, Metadata = new Dictionary<string, string> { ["k"] = "v" } };
        await storage.WriteStateAsync("thread", Thread, first);
        var stale = new GrainState<ThreadGrainState>();
        await storage.ReadStateAsync("thread", Thread, stale);
        first.State = first.State! with { MessageCount = 3 };
        await storage.WriteStateAsync("thread", Thread, first);

        stale.State = stale.State! with { MessageCount = 99 };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("thread", Thread, stale));
        var creator = new GrainState<ThreadGrainState> { State = new ThreadGrainState { Id = "thr_1" } };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("thread", Thread, creator));
        var read = new GrainState<ThreadGrainState>();
        await storage.ReadStateAsync("thread", Thread, read);
        Assert.True(read.RecordExists);
        Assert.Equal(3, read.State!.MessageCount);
        Assert.Equal("v", read.State.Metadata["k"]);
        Assert.Equal(first.ETag, read.ETag);

        await storage.ClearStateAsync("thread", Thread, read);
        var cleared = new GrainState<ThreadGrainState>();
        await storage.ReadStateAsync("thread", Thread, cleared);
        Assert.False(cleared.RecordExists);
    }

    [Fact]
    public async Task A_file_of_the_old_runtime_keeps_its_threads_when_it_is_upgraded()
    {
        var database = _file.Open();
        using (var connection = await database.OpenConnectionAsync(Ct))
        {
            // Schema version 2, as the runtime before Orleans left it, with one thread, its message and run.
            foreach (var migration in SqliteSchema.Migrations.Take(2))
            {
                await ExecuteAsync(connection, migration);
            }

            await ExecuteAsync(connection, """
                INSERT INTO threads VALUES ('thr_1', 7, '{"id":"thr_1","createdAt":"2025-03-14T09:26:53.5897931+02:00","updatedAt":"2025-03-14T09:27:00+02:00","metadata":{"title":"Lisbon"},"messageCount":1,"lastRunId":"run_1"}', '2025-03-14T07:26:53.5897931Z', '2025-03-14T07:27:00Z');
                INSERT INTO messages VALUES ('thr_1', 1, 'msg_1', '{"id":"msg_1","ordinal":1,"role":"user","content":"hello","createdAt":"2025-03-14T09:26:54+02:00"}');
                INSERT INTO runs VALUES ('thr_1', 'run_1', '{"id":"run_1","threadId":"thr_1","agent":"default","userMessageId":"msg_1","startedAt":"2025-03-14T09:26:54+02:00","status":"completed"}');
                PRAGMA user_version = 2;
                """);
        }

        await database.MigrateAsync(Ct);

        var state = new GrainState<ThreadGrainState>();
        await new SqliteGrainStorage(database, TimeProvider.System).ReadStateAsync("thread", Thread, state);
        var history = new SqliteThreadHistory(database);
        Assert.True(state.RecordExists);
        Assert.Equal("7", state.ETag);
        Assert.Equal("thr_1", state.State!.Id);
        Assert.Equal(1, state.State.MessageCount);
        Assert.Equal("Lisbon", state.State.Metadata["title"]);
        Assert.Equal("run_1", state.State.LastRunId);
        Assert.Equal("hello", Assert.Single(await history.ReadMessagesAsync("thr_1", 0, 10, Ct)).Content);
        Assert.Equal(RunStatuses.Completed, (await history.ReadRunAsync("thr_1", "run_1", Ct))!.Status);
        Assert.Empty(await history.ReadUnfinishedRunsAsync("thr_1", Ct));
        Assert.Equal(SqliteDatabase.LatestSchemaVersion.ToString(CultureInfo.InvariantCulture), (await ScalarAsync(database, "PRAGMA user_version;"))!.ToString());
    }

    public void Dispose() => _file.Dispose();

    private static async Task ExecuteAsync(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<object?> ScalarAsync(SqliteDatabase database, string sql)
    {
        using var connection = await database.OpenConnectionAsync(Ct);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(Ct);
    }
}
