using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;

namespace Conversations.Tests.Postgres;

public sealed class PostgresSiloDirectoryTests : PostgresTestBase
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Registered_silos_are_listed_with_their_address_until_stopped()
    {
        var silos = new PostgresSiloDirectory(await Fixture.OpenMigratedAsync());
        Assert.Empty(await silos.ListActiveAsync(Long, Ct));

        await silos.RegisterAsync("silo_b", "http://10.0.0.2:5100", Ct);
        await silos.RegisterAsync("silo_a", "http://10.0.0.1:5100", Ct);

        var listed = await silos.ListActiveAsync(Long, Ct);
        Assert.Equal(["silo_a", "silo_b"], listed.Select(s => s.SiloId));
        Assert.Equal("http://10.0.0.1:5100", listed[0].Address);
        Assert.All(listed, s => Assert.Equal(SiloStatuses.Active, s.Status));
        Assert.All(listed, s => Assert.Equal(s.StartedAt, s.HeartbeatAt));

        await silos.MarkStoppedAsync("silo_a", Ct);
        await silos.MarkStoppedAsync("silo_a", Ct);

        Assert.Equal(["silo_b"], (await silos.ListActiveAsync(Long, Ct)).Select(s => s.SiloId));
        Assert.False(await silos.HeartbeatAsync("silo_a", Ct)); // a stopped silo registers again, it does not heartbeat back
        Assert.False(await silos.HeartbeatAsync("silo_unknown", Ct));
        await silos.RegisterAsync("silo_a", "http://10.0.0.9:5100", Ct);
        Assert.Equal("http://10.0.0.9:5100", (await silos.ListActiveAsync(Long, Ct)).Single(s => s.SiloId == "silo_a").Address);
    }

    [Fact]
    public async Task A_silo_whose_heartbeat_is_older_than_the_limit_is_not_listed_until_it_heartbeats()
    {
        var silos = new PostgresSiloDirectory(await Fixture.OpenMigratedAsync());
        var limit = TimeSpan.FromMilliseconds(300);
        await silos.RegisterAsync("silo_a", "http://10.0.0.1:5100", Ct);
        var registered = Assert.Single(await silos.ListActiveAsync(Long, Ct));

        await WaitUntilAsync(async () => (await silos.ListActiveAsync(limit, Ct)).Count == 0, "the heartbeat is older than the limit");
        Assert.True(await silos.HeartbeatAsync("silo_a", Ct));

        var beating = Assert.Single(await silos.ListActiveAsync(limit, Ct));
        Assert.True(beating.HeartbeatAt > registered.HeartbeatAt);
        Assert.Equal(registered.StartedAt, beating.StartedAt);
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected()
    {
        var silos = new PostgresSiloDirectory(await Fixture.OpenMigratedAsync());

        await Assert.ThrowsAnyAsync<ArgumentException>(() => silos.RegisterAsync("", "http://x", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => silos.RegisterAsync("silo_a", " ", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => silos.HeartbeatAsync("", Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => silos.ListActiveAsync(TimeSpan.Zero, Ct));

        Assert.Empty(await silos.ListActiveAsync(Long, Ct));
    }
}
