using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;

namespace Conversations.Tests.Postgres;

public sealed class PostgresThreadLeaseTests : PostgresTestBase
{
    private const string ThreadId = "thr_1";
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task A_free_lease_is_acquired_with_token_one_and_another_silo_cannot_take_it_while_live()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());

        var lease = await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct);

        Assert.NotNull(lease);
        Assert.Equal(new { ThreadId, SiloId = "silo_a", Token = 1L }, new { lease.ThreadId, lease.SiloId, lease.Token });
        Assert.Null(await leases.TryAcquireAsync(ThreadId, "silo_b", Long, Ct));
        Assert.Equal(lease, await leases.GetOwnerAsync(ThreadId, Ct));
        Assert.Null(await leases.GetOwnerAsync("thr_other", Ct));
        var other = await leases.TryAcquireAsync("thr_other", "silo_b", Long, Ct); // leases are per thread
        Assert.Equal(1, other!.Token);
    }

    [Fact]
    public async Task Re_acquiring_ones_own_live_lease_keeps_the_token_and_extends_it()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var first = await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct);

        var again = await leases.TryAcquireAsync(ThreadId, "silo_a", Long * 2, Ct);

        Assert.Equal(first!.Token, again!.Token);
        Assert.True(again.ExpiresAt > first.ExpiresAt);
        Assert.Equal(again, await leases.GetOwnerAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task Renew_extends_the_lease_of_the_holder_only()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;

        Assert.True(await leases.RenewAsync(lease, Long * 2, Ct));

        var owner = await leases.GetOwnerAsync(ThreadId, Ct);
        Assert.Equal(lease.Token, owner!.Token);
        Assert.True(owner.ExpiresAt >= lease.ExpiresAt + Long);
        Assert.False(await leases.RenewAsync(lease with { Token = lease.Token + 1 }, Long, Ct));
        Assert.False(await leases.RenewAsync(lease with { SiloId = "silo_b" }, Long, Ct));
        Assert.False(await leases.RenewAsync(lease with { ThreadId = "thr_other" }, Long, Ct));
        Assert.Equal(owner, await leases.GetOwnerAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task An_expired_lease_is_taken_over_with_a_higher_token_and_the_old_holder_can_no_longer_renew_or_release()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var old = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;
        Assert.Null(await leases.TryAcquireAsync(ThreadId, "silo_b", Long, Ct));
        Assert.True(await leases.RenewAsync(old, Short, Ct)); // a renewal sets the expiry from now: here, sooner

        await WaitUntilAsync(async () => await leases.GetOwnerAsync(ThreadId, Ct) is null, "the lease expires");
        var taken = await leases.TryAcquireAsync(ThreadId, "silo_b", Long, Ct);

        Assert.NotNull(taken);
        Assert.Equal("silo_b", taken.SiloId);
        Assert.Equal(old.Token + 1, taken.Token);
        Assert.False(await leases.RenewAsync(old, Long, Ct));
        Assert.False(await leases.ReleaseAsync(old, Ct));
        Assert.Null(await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct));
        Assert.Equal(taken, await leases.GetOwnerAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task An_expired_lease_cannot_be_renewed_and_re_acquiring_it_hands_out_a_new_token()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var old = (await leases.TryAcquireAsync(ThreadId, "silo_a", Short, Ct))!;
        await WaitUntilAsync(async () => await leases.GetOwnerAsync(ThreadId, Ct) is null, "the lease expires");

        Assert.False(await leases.RenewAsync(old, Long, Ct));
        var again = await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct);

        Assert.Equal(old.Token + 1, again!.Token);
    }

    [Fact]
    public async Task A_released_lease_is_free_at_once_and_its_next_holder_gets_a_higher_token()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;

        Assert.True(await leases.ReleaseAsync(lease, Ct));

        Assert.Null(await leases.GetOwnerAsync(ThreadId, Ct));
        Assert.False(await leases.ReleaseAsync(lease, Ct));
        Assert.False(await leases.RenewAsync(lease, Long, Ct));
        var next = await leases.TryAcquireAsync(ThreadId, "silo_b", Long, Ct);
        Assert.Equal(lease.Token + 1, next!.Token);
    }

    [Fact]
    public async Task Of_silos_racing_for_a_free_lease_exactly_one_gets_it()
    {
        var stores = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ => new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync())));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var attempts = stores.Select((store, i) => Task.Run(async () =>
        {
            await gate.Task;
            return await store.TryAcquireAsync(ThreadId, $"silo_{i}", Long, Ct);
        }, Ct)).ToArray();
        gate.SetResult();
        var results = await Task.WhenAll(attempts);

        var winner = Assert.Single(results, r => r is not null);
        Assert.Equal(1, winner!.Token);
        Assert.Equal(winner, await stores[0].GetOwnerAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected()
    {
        var leases = new PostgresThreadLeaseStore(await Fixture.OpenMigratedAsync());
        var lease = new ThreadLease(ThreadId, "silo_a", 1, DateTimeOffset.UnixEpoch);

        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.TryAcquireAsync("", "silo_a", Long, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.TryAcquireAsync(ThreadId, "", Long, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.TryAcquireAsync(ThreadId, "silo_a", TimeSpan.Zero, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.RenewAsync(lease, TimeSpan.FromSeconds(-1), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.RenewAsync(lease with { Token = 0 }, Long, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.ReleaseAsync(lease with { SiloId = "" }, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => leases.GetOwnerAsync("", Ct));

        Assert.Null(await leases.GetOwnerAsync(ThreadId, Ct));
    }
}
