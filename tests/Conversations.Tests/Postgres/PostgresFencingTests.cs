using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Storage.Postgres;
using static Conversations.Tests.Storage.StorageSamples;

namespace Conversations.Tests.Postgres;

/// <summary>A silo that lost its thread's lease (it paused past the expiry and another silo took over) cannot write.</summary>
public sealed class PostgresFencingTests : PostgresTestBase
{
    private const string ThreadId = "thr_1";
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task The_holders_fenced_writes_and_appends_succeed()
    {
        var (leases, store, log) = await OpenAsync();
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;

        var version = await store.WriteAsync(
            new ThreadWrite(State(ThreadId, 1, "run_1"), 0) { Messages = [UserMessage(1)], Runs = [Run(ThreadId)], FencingToken = lease.Token }, Ct);
        await log.AppendAsync(Deltas(ThreadId, [1, 2]), lease.Token, Ct);

        Assert.Equal(1, version);
        Assert.Equal(2, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task After_a_takeover_the_stale_silos_write_and_append_throw_and_change_nothing()
    {
        var (leases, store, log) = await OpenAsync();
        var stale = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;
        var original = State(ThreadId, 1, "run_1");
        await store.WriteAsync(new ThreadWrite(original, 0) { Messages = [UserMessage(1)], Runs = [Run(ThreadId)], FencingToken = stale.Token }, Ct);
        await log.AppendAsync(Deltas(ThreadId, [1, 2], "a"), stale.Token, Ct);

        // silo_a's last renewal was short, and it pauses past it; silo_b takes the thread over.
        Assert.True(await leases.RenewAsync(stale, TimeSpan.FromMilliseconds(200), Ct));
        await WaitUntilAsync(async () => await leases.GetOwnerAsync(ThreadId, Ct) is null, "silo_a's lease expires");
        var current = (await leases.TryAcquireAsync(ThreadId, "silo_b", Long, Ct))!;
        Assert.True(current.Token > stale.Token);

        // silo_a resumes and writes what it had computed, with the version it read: only the fence can stop it.
        var write = new ThreadWrite(State(ThreadId, 2) with { LastRunId = "from_a" }, 1)
        {
            Messages = [UserMessage(1) with { Content = "rewritten" }, AssistantMessage(2)],
            Runs = [Run(ThreadId, status: RunStatuses.Completed), Run(ThreadId, "run_2")],
            FencingToken = stale.Token,
        };
        var lost = await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(write, Ct));
        var lostAppend = await Assert.ThrowsAsync<LeaseLostException>(() => log.AppendAsync(Deltas(ThreadId, [3, 4], "a"), stale.Token, Ct));

        Assert.Equal((ThreadId, stale.Token), (lost.ThreadId, lost.FencingToken));
        Assert.Equal((ThreadId, stale.Token), (lostAppend.ThreadId, lostAppend.FencingToken));
        var read = await store.ReadAsync(ThreadId, Ct);
        Assert.Equal(1, read!.Version);
        Assert.Equal(original.LastRunId, read.State.LastRunId);
        AssertJsonEqual(UserMessage(1), Assert.Single(await store.ReadMessagesAsync(ThreadId, 0, 10, Ct)));
        Assert.Equal(Run(ThreadId), await store.ReadRunAsync(ThreadId, "run_1", Ct));
        Assert.Null(await store.ReadRunAsync(ThreadId, "run_2", Ct));
        Assert.Equal(2, await log.GetLastSequenceAsync(ThreadId, Ct));

        // The new holder writes on from what is stored.
        Assert.Equal(2, await store.WriteAsync(write with { State = State(ThreadId, 2) with { LastRunId = "from_b" }, FencingToken = current.Token }, Ct));
        await log.AppendAsync(Deltas(ThreadId, [3, 4], "b"), current.Token, Ct);
        Assert.Equal("from_b", (await store.ReadAsync(ThreadId, Ct))!.State.LastRunId);
        Assert.Equal(4, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task An_expired_lease_fences_even_when_no_one_took_over()
    {
        var (leases, store, log) = await OpenAsync();
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", TimeSpan.FromMilliseconds(200), Ct))!;
        await WaitUntilAsync(async () => await leases.GetOwnerAsync(ThreadId, Ct) is null, "the lease expires");

        await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = lease.Token }, Ct));
        await Assert.ThrowsAsync<LeaseLostException>(() => log.AppendAsync(Deltas(ThreadId, [1]), lease.Token, Ct));

        Assert.Null(await store.ReadAsync(ThreadId, Ct));
        Assert.Equal(0, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task A_released_lease_or_one_never_taken_fences()
    {
        var (leases, store, log) = await OpenAsync();
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;
        await leases.ReleaseAsync(lease, Ct);

        await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = lease.Token }, Ct));
        await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(new ThreadWrite(State("thr_never"), 0) { FencingToken = 1 }, Ct));
        await Assert.ThrowsAsync<LeaseLostException>(() => log.AppendAsync(Deltas("thr_never", [1]), 1, Ct));

        Assert.Null(await store.ReadAsync(ThreadId, Ct));
        Assert.Null(await store.ReadAsync("thr_never", Ct));
        Assert.Equal(0, await log.GetLastSequenceAsync("thr_never", Ct));
    }

    [Fact]
    public async Task The_fence_is_per_thread_and_checked_before_the_version()
    {
        var (leases, store, _) = await OpenAsync();
        var mine = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;
        var theirs = (await leases.TryAcquireAsync("thr_2", "silo_b", Long, Ct))!;
        Assert.Equal(mine.Token, theirs.Token); // tokens count per thread: equal numbers, different leases
        await store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = mine.Token }, Ct);

        await Assert.ThrowsAsync<StorageConflictException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = mine.Token }, Ct));
        await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = mine.Token + 1 }, Ct));
        await leases.ReleaseAsync(theirs, Ct);
        await Assert.ThrowsAsync<LeaseLostException>(() => store.WriteAsync(new ThreadWrite(State("thr_2"), 0) { FencingToken = theirs.Token }, Ct));
        Assert.Equal(2, await store.WriteAsync(new ThreadWrite(State(ThreadId), 1) { FencingToken = mine.Token }, Ct));
    }

    [Fact]
    public async Task An_unfenced_write_is_not_checked_against_the_lease()
    {
        var (leases, store, log) = await OpenAsync();
        await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct);

        Assert.Equal(1, await store.WriteAsync(new ThreadWrite(State(ThreadId), 0), Ct));
        await log.AppendAsync(Deltas(ThreadId, [1]), Ct);
        await log.AppendAsync(Deltas(ThreadId, [2]), null, Ct);

        Assert.Equal(2, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    [Fact]
    public async Task Fenced_arguments_are_checked()
    {
        var (leases, store, log) = await OpenAsync();
        var lease = (await leases.TryAcquireAsync(ThreadId, "silo_a", Long, Ct))!;

        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.AppendAsync([.. Deltas(ThreadId, [1]), .. Deltas("thr_2", [1])], lease.Token, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.AppendAsync(Deltas(ThreadId, [1]), 0, Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.WriteAsync(new ThreadWrite(State(ThreadId), 0) { FencingToken = 0 }, Ct));

        Assert.Null(await store.ReadAsync(ThreadId, Ct));
        Assert.Equal(0, await log.GetLastSequenceAsync(ThreadId, Ct));
    }

    private async Task<(PostgresThreadLeaseStore Leases, PostgresThreadStore Store, PostgresEventLog Log)> OpenAsync()
    {
        var database = await Fixture.OpenMigratedAsync();
        return (new PostgresThreadLeaseStore(database), new PostgresThreadStore(database), new PostgresEventLog(database));
    }
}
