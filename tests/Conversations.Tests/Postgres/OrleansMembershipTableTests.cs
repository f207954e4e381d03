using System.Data;
using System.Net;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Runtime.Membership;
using Orleans.Runtime.MembershipService;

namespace Conversations.Tests.Postgres;

/// <summary>
/// Orleans' ADO.NET membership table and gateway list, driven directly through <see cref="IMembershipTable"/>, so every
/// statement of the protocol runs, the losing branches of its optimistic concurrency included. They are given our
/// <see cref="PostgresDatabase.DataSource"/> (one pool, search path set), on a session whose time zone is far from
/// UTC: the silos' times must round-trip as UTC whatever the server's or session's zone.
/// </summary>
public sealed class OrleansMembershipTableTests : PostgresTestBase
{
    private const string ClusterId = "cluster-a";

    [Fact]
    public async Task Rows_are_inserted_and_updated_only_with_the_table_version_read()
    {
        var (table, _) = await OpenAsync();
        var empty = await table.ReadAllAsync(Ct);
        Assert.Empty(empty.Members);
        var silo1 = Entry(11111, SiloStatus.Joining);
        var silo2 = Entry(11112, SiloStatus.Joining);

        Assert.True(await table.InsertRowAsync(silo1, empty.Version.Next(), Ct));
        Assert.False(await table.InsertRowAsync(silo2, empty.Version.Next(), Ct)); // stale version: nothing written
        var one = await table.ReadAllAsync(Ct);
        Assert.Equal(empty.Version.Version + 1, one.Version.Version);
        Assert.False(await table.InsertRowAsync(silo1, one.Version.Next(), Ct)); // that incarnation is listed already
        Assert.Equal(one.Version, (await table.ReadAllAsync(Ct)).Version);
        Assert.True(await table.InsertRowAsync(silo2, one.Version.Next(), Ct));

        var two = await table.ReadAllAsync(Ct);
        Assert.Equal([11111, 11112], two.Members.Select(m => m.Item1.SiloAddress.Endpoint.Port).Order());
        var read = two.Members.Single(m => m.Item1.SiloAddress.Equals(silo1.SiloAddress)).Item1;
        Assert.Equal(
            (silo1.SiloName, silo1.HostName, silo1.Status, silo1.ProxyPort, silo1.StartTime, silo1.IAmAliveTime),
            (read.SiloName, read.HostName, read.Status, read.ProxyPort, read.StartTime, read.IAmAliveTime));
        Assert.Equal(DateTimeKind.Utc, read.StartTime.Kind);
        Assert.Equal(silo1.StartTime, await ScalarAsync<DateTime>(Fixture.Open(), "SELECT starttime FROM orleansmembershiptable WHERE port = 11111;"));

        // Update: status and suspicions, again only with the version read (a row's ETag is the table version's).
        silo1.Status = SiloStatus.Active;
        silo1.AddOrUpdateSuspector(silo2.SiloAddress, Millis(DateTime.UtcNow), 5);
        Assert.False(await table.UpdateRowAsync(silo1, one.Version.VersionEtag, one.Version.Next(), Ct)); // stale
        Assert.True(await table.UpdateRowAsync(silo1, two.Version.VersionEtag, two.Version.Next(), Ct));
        var row = await table.ReadRowAsync(silo1.SiloAddress, Ct);
        Assert.Equal(two.Version.Version + 1, row.Version.Version);
        var updated = Assert.Single(row.Members).Item1;
        Assert.Equal(SiloStatus.Active, updated.Status);
        var suspicion = Assert.Single(updated.SuspectTimes!);
        Assert.Equal((silo2.SiloAddress, silo1.SuspectTimes![0].Item2), (suspicion.Item1, suspicion.Item2));

        // A row not listed: the version comes back alone.
        var unknown = await table.ReadRowAsync(SiloAddress.New(IPAddress.Loopback, 9, 9), Ct);
        Assert.Empty(unknown.Members);
        Assert.Equal(row.Version, unknown.Version);
        Assert.False(await table.UpdateRowAsync(Entry(9, SiloStatus.Active), row.Version.VersionEtag, row.Version.Next(), Ct));
        Assert.Equal(row.Version, (await table.ReadAllAsync(Ct)).Version);
    }

    [Fact]
    public async Task Heartbeats_change_only_the_alive_time_and_gateways_are_the_active_silos_with_a_proxy_port()
    {
        var (table, database) = await OpenAsync();
        var active = Entry(11111, SiloStatus.Active);
        var joining = Entry(11112, SiloStatus.Joining);
        var noGateway = Entry(11113, SiloStatus.Active, proxyPort: 0);
        foreach (var entry in new[] { active, joining, noGateway })
        {
            Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var before = (await table.ReadAllAsync(Ct)).Version;
        active.IAmAliveTime = Millis(DateTime.UtcNow.AddSeconds(30));
        await table.UpdateIAmAliveAsync(active, Ct);

        var after = await table.ReadRowAsync(active.SiloAddress, Ct);
        Assert.Equal(before, after.Version);
        Assert.Equal(active.IAmAliveTime, Assert.Single(after.Members).Item1.IAmAliveTime);

        var gateways = new AdoNetGatewayListProvider(
            NullLogger<AdoNetGatewayListProvider>.Instance,
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new AdoNetClusteringClientOptions { Invariant = OrleansPostgresCluster.Invariant, DataSource = database.DataSource }),
            Options.Create(new GatewayOptions()),
            Options.Create(new ClusterOptions { ClusterId = ClusterId, ServiceId = "service-a" }));
        await gateways.InitializeGatewayListProviderAsync(Ct);
        var gateway = Assert.Single(await gateways.GetGatewaysAsync(Ct));
        Assert.Equal(("127.0.0.1", 30000), (gateway.Host, gateway.Port));
    }

    [Fact]
    public async Task Cleanup_deletes_only_dead_silos_unheard_of_since_the_cutoff()
    {
        var (table, database) = await OpenAsync();
        var now = Millis(DateTime.UtcNow);
        var deadLongAgo = Entry(11111, SiloStatus.Dead, start: now.AddHours(-3), alive: now.AddHours(-2));
        var deadRecently = Entry(11112, SiloStatus.Dead, start: now.AddHours(-3), alive: now.AddMinutes(-1));
        var activeLongAgo = Entry(11113, SiloStatus.Active, start: now.AddHours(-3), alive: now.AddHours(-2));
        var deadWithFreshVote = Entry(11114, SiloStatus.Dead, start: now.AddHours(-3), alive: now.AddHours(-2));
        deadWithFreshVote.AddOrUpdateSuspector(activeLongAgo.SiloAddress, now, 5);
        foreach (var entry in new[] { deadLongAgo, deadRecently, activeLongAgo, deadWithFreshVote })
        {
            Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var version = (await table.ReadAllAsync(Ct)).Version;
        Assert.True(await table.UpdateRowAsync(deadWithFreshVote, version.VersionEtag, version.Next(), Ct));

        await table.CleanupDefunctSiloEntriesAsync(now.AddHours(-1), Ct);

        Assert.Equal([11112, 11113, 11114], (await table.ReadAllAsync(Ct)).Members.Select(m => m.Item1.SiloAddress.Endpoint.Port).Order());

        // The statement of the older, bulk form (Orleans uses it when CleanupDefunctSiloEntryKey is absent).
        await RunStoredQueryAsync(database, "CleanupDefunctSiloEntriesKey", ("DeploymentId", ClusterId, DbType.String), ("IAmAliveTime", now.AddMinutes(-30), DbType.DateTime));
        Assert.Equal([11112, 11113], (await table.ReadAllAsync(Ct)).Members.Select(m => m.Item1.SiloAddress.Endpoint.Port).Order());
    }

    [Fact]
    public async Task Clusters_are_apart_and_deleting_one_removes_its_rows_and_version()
    {
        var (table, database) = await OpenAsync();
        var (other, _) = await OpenAsync("cluster-b", database);
        Assert.True(await table.InsertRowAsync(Entry(11111, SiloStatus.Active), (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        Assert.True(await other.InsertRowAsync(Entry(11111, SiloStatus.Active), (await other.ReadAllAsync(Ct)).Version.Next(), Ct));

        await table.DeleteMembershipTableEntriesAsync(ClusterId, Ct);

        Assert.Equal(["cluster-b"], await ListAsync<string>(database, "SELECT deploymentid FROM orleansmembershipversiontable;"));
        Assert.Equal(["cluster-b"], await ListAsync<string>(database, "SELECT deploymentid FROM orleansmembershiptable;"));
        Assert.Single((await other.ReadAllAsync(Ct)).Members);
        await table.InitializeMembershipTableAsync(true, Ct); // a fresh version row again
        Assert.Empty((await table.ReadAllAsync(Ct)).Members);
    }

    private async Task<(AdoNetClusteringTable Table, PostgresDatabase Database)> OpenAsync(string clusterId = ClusterId, PostgresDatabase? database = null)
    {
        if (database is null)
        {
            await Fixture.OpenMigratedAsync();
            // +12:45 (or +13:45): a DateTime sent as a zone-less timestamp would be shifted by that much.
            database = Fixture.Open("Timezone=Pacific/Chatham");
            Assert.Equal("Pacific/Chatham", await ScalarAsync<string>(database, "SHOW timezone;"));
        }

        var table = new AdoNetClusteringTable(
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "service-a" }),
            Options.Create(new AdoNetClusteringSiloOptions { Invariant = OrleansPostgresCluster.Invariant, DataSource = database.DataSource }),
            NullLogger<AdoNetClusteringTable>.Instance);
        await table.InitializeMembershipTableAsync(true, Ct);
        return (table, database);
    }

    private static MembershipEntry Entry(int port, SiloStatus status, int proxyPort = 30000, DateTime? start = null, DateTime? alive = null)
    {
        var now = Millis(DateTime.UtcNow);
        return new MembershipEntry
        {
            SiloAddress = SiloAddress.New(IPAddress.Loopback, port, 123456789),
            SiloName = $"silo-{port}",
            HostName = "host-a",
            Status = status,
            ProxyPort = proxyPort,
            StartTime = start ?? now.AddMinutes(-5),
            IAmAliveTime = alive ?? now,
        };
    }

    /// <summary>A UTC time to the millisecond, which every layer keeps exactly.</summary>
    private static DateTime Millis(DateTime time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);

    /// <summary>Runs a statement of <c>orleansquery</c> with parameters bound the way Orleans binds them (by name and DbType).</summary>
    private static async Task RunStoredQueryAsync(PostgresDatabase database, string key, params (string Name, object Value, DbType Type)[] parameters)
    {
        var text = await ScalarAsync<string>(database, $"SELECT querytext FROM orleansquery WHERE querykey = '{key}';");
        await using var connection = await database.OpenConnectionAsync(Ct);
        await using var command = connection.CreateCommand();
        command.CommandText = text;
        foreach (var (name, value, type) in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { ParameterName = name, Value = value, DbType = type });
        }

        await command.ExecuteNonQueryAsync(Ct);
    }
}
