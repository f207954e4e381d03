using ThreadState = Conversations.Grains.Abstractions.Threads.ThreadGrainState;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Conversations.Tests.Storage;
using Orleans.Storage;

namespace Conversations.Tests.Postgres;

/// <summary>
/// Orleans' own ADO.NET providers, run by two in-process silos, against the schema our migrations create: the proof
/// that the <c>orleansquery</c> statements honour the providers' contract.
/// </summary>
public sealed class OrleansClusterTests : PostgresTestBase
{
    private const int Active = 3;
    private const int Dead = 6;

    [Fact]
    public async Task Both_silos_are_listed_active_at_127_0_0_1_and_a_stopped_silo_is_marked_dead()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database);
        var clusterId = cluster.Options.ClusterId;

        Assert.All(cluster.Silos, silo =>
            Assert.Equal("AdoNetClusteringTable", silo.ServiceProvider.GetRequiredService<IMembershipTable>().GetType().Name));
        var rows = await MembershipAsync(database, clusterId);
        Assert.Equal(2, rows.Count);
        Assert.All(rows, row => Assert.Equal(("127.0.0.1", Active), (row.Address, row.Status)));
        Assert.Equal(
            cluster.Silos.Select(s => (s.SiloAddress.Endpoint.Port, s.SiloAddress.Generation)).Order(),
            rows.Select(r => (r.Port, r.Generation)).Order());
        Assert.True(await ScalarAsync<int>(database, $"SELECT version FROM orleansmembershipversiontable WHERE deploymentid = '{clusterId}';") >= 4);

        // The client found a gateway through GatewaysQueryKey and reaches the grains.
        Assert.Equal("ok", (await cluster.Client.GetGrain<IStateProbeGrain>("ping").WriteAsync("ok")).Value);

        var stopped = cluster.Silos[1];
        await cluster.StopSiloAsync(stopped, Ct);

        await WaitUntilAsync(
            async () => (await MembershipAsync(database, clusterId)).Single(r => r.Port == stopped.SiloAddress.Endpoint.Port).Status == Dead,
            "the stopped silo is marked dead");
        var remaining = (await MembershipAsync(database, clusterId)).Single(r => r.Port != stopped.SiloAddress.Endpoint.Port);
        Assert.Equal(Active, remaining.Status);
    }

    [Fact]
    public async Task Grain_state_written_by_one_activation_is_read_by_the_next_and_a_stale_etag_does_not_overwrite()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database);
        var grain = cluster.Client.GetGrain<IStateProbeGrain>("thr_1");

        var first = await grain.GetAsync();
        Assert.Equal((null, 0, null, false), (first.Value, first.Writes, first.ETag, first.RecordExists));
        var written = await grain.WriteAsync("one");
        Assert.Equal(("one", "1", true), (written.Value, written.ETag, written.RecordExists));
        written = await grain.WriteAsync("two");
        Assert.Equal("2", written.ETag);

        await grain.DeactivateAsync();
        var next = await WaitForNewActivationAsync(grain, written.Activation);
        Assert.Equal(("two", 2, "2", true), (next.Value, next.Writes, next.ETag, next.RecordExists));

        // Another writer (a second activation in a split brain) writes behind this activation's back.
        var storage = cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>("threads");
        var other = new GrainState<ProbeState>();
        await storage.ReadStateAsync("probe", grain.GetGrainId(), other);
        Assert.Equal(("two", "2"), (other.State!.Value, other.ETag));
        other.State!.Value = "theirs";
        await storage.WriteStateAsync("probe", grain.GetGrainId(), other);
        Assert.Equal("3", other.ETag);

        await Assert.ThrowsAsync<InconsistentStateException>(() => grain.WriteAsync("stale"));

        var stored = new GrainState<ProbeState>();
        await storage.ReadStateAsync("probe", grain.GetGrainId(), stored);
        Assert.Equal(("theirs", "3"), (stored.State!.Value, stored.ETag));
        var reloaded = await WaitForNewActivationAsync(grain, next.Activation); // Orleans deactivates on InconsistentStateException
        Assert.Equal(("theirs", "3"), (reloaded.Value, reloaded.ETag));
    }

    [Fact]
    public async Task Grain_storage_honours_first_writes_clear_and_delete_by_etag()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database, silos: 1);
        var services = cluster.Silos[0].ServiceProvider;
        var storage = services.GetRequiredKeyedService<IGrainStorage>("threads");
        var deleting = services.GetRequiredKeyedService<IGrainStorage>("threads-delete");
        var id = GrainId.Create("probe", "thr_x");

        // Two first writes of one grain (no ETag): the second collides.
        var mine = new GrainState<ProbeState>(new ProbeState { Value = "mine" });
        var theirs = new GrainState<ProbeState>(new ProbeState { Value = "theirs" });
        await storage.WriteStateAsync("probe", id, mine);
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("probe", id, theirs));
        Assert.Equal("mine", (await ReadAsync(storage, id)).State!.Value);

        // Another grain type and another key are other rows, string and GUID keys alike.
        var guidId = GrainId.Create("probe", Guid.NewGuid().ToString("N"));
        await storage.WriteStateAsync("other", id, new GrainState<ProbeState>(new ProbeState { Value = "other type" }));
        await storage.WriteStateAsync("probe", guidId, new GrainState<ProbeState>(new ProbeState { Value = "guid" }));
        Assert.Equal("other type", (await ReadAsync(storage, id, "other")).State!.Value);
        Assert.Equal("guid", (await ReadAsync(storage, guidId)).State!.Value);

        // Clear keeps the row without a payload at the next version; a stale clear fails.
        var stale = await ReadAsync(storage, id);
        await storage.ClearStateAsync("probe", id, mine);
        Assert.Equal(("2", false), (mine.ETag, mine.RecordExists));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync("probe", id, stale));
        var cleared = await ReadAsync(storage, id);
        Assert.Equal((null, "2", false), (cleared.State?.Value, cleared.ETag, cleared.RecordExists));
        cleared.State!.Value = "again";
        await storage.WriteStateAsync("probe", id, cleared);
        Assert.Equal(("again", "3"), ((await ReadAsync(storage, id)).State!.Value, cleared.ETag));

        // Delete on clear removes the row; the next write starts over at version 1.
        var doomed = await ReadAsync(deleting, id);
        await deleting.ClearStateAsync("probe", id, doomed);
        Assert.Null(doomed.ETag);
        Assert.Equal(0, await ScalarAsync<long>(database, "SELECT count(*) FROM orleansstorage WHERE graintypestring = 'probe' AND grainidextensionstring = 'thr_x';"));
        await deleting.WriteStateAsync("probe", id, new GrainState<ProbeState>(new ProbeState { Value = "reborn" }));
        Assert.Equal(("reborn", "1"), ((await ReadAsync(storage, id)).State!.Value, (await ReadAsync(storage, id)).ETag));
    }

    [Fact]
    public async Task The_thread_grain_state_round_trips_through_the_threads_storage()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database, silos: 1);
        var storage = cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>("threads");
        var id = GrainId.Create("thread", "thr_1");
        var state = new ThreadState
        {
            Id = "thr_1",
            CreatedAt = StorageSamples.T0,
            UpdatedAt = StorageSamples.T0.AddMinutes(3),
            Metadata = new Dictionary<string, string> { ["title"] = "Trip to Lisbon ✓", ["empty"] = "" },
            MessageCount = 4,
            ActiveRunId = "run_2",
            LastRunId = "run_2",
            ReservedSequence = 256,
        };

        await storage.WriteStateAsync("state", id, new GrainState<ThreadState>(state));
        var read = new GrainState<ThreadState>();
        await storage.ReadStateAsync("state", id, read);

        Assert.Equal(("1", true), (read.ETag, read.RecordExists));
        StorageSamples.AssertJsonEqual(state, read.State);
    }

    [Fact]
    public async Task A_reminder_is_registered_listed_fired_and_unregistered()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database);
        var grain = cluster.Client.GetGrain<IReminderProbeGrain>("thr_1");

        await grain.RegisterAsync("tick", TimeSpan.FromMilliseconds(200), TimeSpan.FromMinutes(1));
        await grain.RegisterAsync("tock", TimeSpan.FromHours(1), TimeSpan.FromHours(1));

        Assert.Equal(["tick", "tock"], await grain.ListAsync());
        Assert.Equal(
            ["tick", "tock"],
            await ListAsync<string>(database, $"SELECT remindername FROM orleansreminderstable WHERE serviceid = '{cluster.Options.ServiceId}' ORDER BY 1;"));
        await WaitUntilAsync(async () => await grain.GetTicksAsync() > 0, "the reminder fires");

        await grain.UnregisterAsync("tick");

        Assert.Equal(["tock"], await grain.ListAsync());
        Assert.Equal(["tock"], await ListAsync<string>(database, "SELECT remindername FROM orleansreminderstable ORDER BY 1;"));
    }

    [Fact]
    public async Task The_reminder_table_reads_ring_ranges_and_refuses_a_stale_etag()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var cluster = await OrleansPostgresCluster.StartAsync(database, silos: 1);
        var table = cluster.Silos[0].ServiceProvider.GetRequiredService<IReminderTable>();
        var grains = Enumerable.Range(0, 40).Select(i => GrainId.Create("reminderprobe", $"g{i}")).ToArray();
        foreach (var grain in grains)
        {
            await table.UpsertRow(new ReminderEntry { GrainId = grain, ReminderName = "r", StartAt = DateTime.UtcNow, Period = TimeSpan.FromMinutes(5) }, Ct);
        }

        var hashes = grains.ToDictionary(g => g, g => g.GetUniformHashCode());
        foreach (var (begin, end) in new (uint, uint)[] { (0, uint.MaxValue), (0x4000_0000, 0xC000_0000), (0xC000_0000, 0x4000_0000), (0x1000, 0x1000), (0x7FFF_FFFF, 0x8000_0001), (0x8000_0001, 0x7FFF_FFFF) })
        {
            var expected = grains.Where(g => InRange(hashes[g], begin, end)).Select(g => g.ToString()).Order(StringComparer.Ordinal);
            var read = (await table.ReadRows(begin, end, Ct)).Reminders.Select(r => r.GrainId.ToString()).Order(StringComparer.Ordinal);
            Assert.Equal(expected, read);
        }

        var entry = await table.ReadRow(grains[0], "r", Ct);
        Assert.NotNull(entry);
        var newETag = await table.UpsertRow(new ReminderEntry { GrainId = grains[0], ReminderName = "r", StartAt = entry.StartAt, Period = TimeSpan.FromMinutes(7) }, Ct);
        Assert.NotEqual(entry.ETag, newETag);
        Assert.False(await table.RemoveRow(grains[0], "r", entry.ETag!, Ct));
        Assert.Equal(TimeSpan.FromMinutes(7), (await table.ReadRow(grains[0], "r", Ct))!.Period);
        Assert.True(await table.RemoveRow(grains[0], "r", newETag!, Ct));
        Assert.Null(await table.ReadRow(grains[0], "r", Ct));
        Assert.Empty((await table.ReadRows(grains[0], Ct)).Reminders);
        Assert.Single((await table.ReadRows(grains[1], Ct)).Reminders);
    }

    /// <summary>The ring range (begin, end], wrapping past the top; begin == end is the whole ring.</summary>
    private static bool InRange(uint hash, uint begin, uint end) =>
        begin < end ? hash > begin && hash <= end : hash > begin || hash <= end;

    private static async Task<GrainState<ProbeState>> ReadAsync(IGrainStorage storage, GrainId id, string stateName = "probe")
    {
        var state = new GrainState<ProbeState>();
        await storage.ReadStateAsync(stateName, id, state);
        return state;
    }

    private static async Task<ProbeSnapshot> WaitForNewActivationAsync(IStateProbeGrain grain, Guid previous)
    {
        ProbeSnapshot? snapshot = null;
        await WaitUntilAsync(async () => (snapshot = await grain.GetAsync()).Activation != previous, "the grain is activated anew");
        return snapshot!;
    }

    private static async Task<List<(string Address, int Port, int Generation, int Status)>> MembershipAsync(PostgresDatabase database, string clusterId)
    {
        await using var command = database.DataSource.CreateCommand(
            "SELECT address, port, generation, status FROM orleansmembershiptable WHERE deploymentid = $1 ORDER BY port;");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<(string, int, int, int)>();
        while (await reader.ReadAsync(Ct))
        {
            rows.Add((reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3)));
        }

        return rows;
    }
}
