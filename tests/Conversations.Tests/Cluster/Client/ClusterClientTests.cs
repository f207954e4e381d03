using Conversations.Silo.Streams.Sse;
using System.Net.Sockets;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.Client;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Conversations.Silo.Streams;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Cluster.Client;

public sealed class ClusterClientTests : PostgresTestBase
{
    private static string NewThreadId() => $"thr_{Guid.NewGuid():N}";

    private static long[] Range(long from, long to) => [.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (long)i)];

    [Fact]
    public async Task Calls_go_to_the_lease_owner_and_a_stale_owner_answer_is_followed_through_421()
    {
        await using var a = await TestSilo.StartAsync(Fixture, "silo_a");
        await using var b = await TestSilo.StartAsync(Fixture, "silo_b");
        var threadId = NewThreadId();
        Assert.True(await b.ActivateAsync(threadId));
        await using var gateway = await ClusterGateway.StartAsync(Fixture);

        var created = await gateway.Grains.GetGrain<IThreadGrain>(threadId).CreateAsync(new CreateThread(), Ct);

        Assert.Equal(threadId, created!.Id);
        Assert.Equal((0, 1), (a.CallCount, b.CallCount));

        // A gateway whose lease read is stale sends the call to silo_a, which redirects it to the owner.
        var stale = new StaleLeases(new ThreadLease(threadId, "silo_a", 1, DateTimeOffset.MaxValue));
        await using var staleGateway = await ClusterGateway.StartAsync(Fixture, leases: stale);
        var snapshot = await staleGateway.Grains.GetGrain<IThreadGrain>(threadId).GetAsync(Ct);

        Assert.Equal(threadId, snapshot!.Id);
        Assert.Equal((1, 2), (a.CallCount, b.CallCount));
    }

    [Fact]
    public async Task Without_a_live_owner_a_call_goes_to_the_rendezvous_silo_which_then_owns_the_thread_and_streams_its_run()
    {
        await using var a = await TestSilo.StartAsync(Fixture, "silo_a");
        await using var b = await TestSilo.StartAsync(Fixture, "silo_b");
        await using var gateway = await ClusterGateway.StartAsync(Fixture);
        var threadId = NewThreadId();
        var expected = SiloLocator.PickByRendezvous(threadId, await new PostgresSiloDirectory(await Fixture.OpenMigratedAsync()).ListActiveAsync(TimeSpan.FromMinutes(1), Ct));
        var (chosen, other) = expected.SiloId == a.SiloId ? (a, b) : (b, a);
        var grain = gateway.Grains.GetGrain<IThreadGrain>(threadId);

        Assert.NotNull(await grain.CreateAsync(new CreateThread { Metadata = new Dictionary<string, string> { ["k"] = "v" } }, Ct));
        var accepted = Assert.IsType<SendMessageResult.Accepted>(await grain.SendMessageAsync(new SendMessage("Hello there"), Ct));
        var run = await gateway.Events.SubscribeAsync(threadId, accepted.StartSequence - 1, Ct).UntilRunEndsAsync(accepted.RunId, TestTimeouts.Guard()).ToListAsync(Ct);

        Assert.Equal((2, 0), (chosen.CallCount, other.CallCount));
        Assert.Equal(chosen.SiloId, (await gateway.Locator.FindOwnerAsync(threadId, Ct)).Lease!.SiloId);
        Assert.Equal(Range(accepted.StartSequence, accepted.StartSequence + run.Count - 1), run.Select(e => e.Sequence));
        Assert.IsType<RunCompleted>(run[^1]);
        var completed = run.OfType<MessageCompleted>().Last();
        Assert.Equal(completed.Content, string.Concat(run.OfType<TextDelta>().Where(d => d.MessageId == completed.MessageId).Select(d => d.Text)));
        // Every call's result crosses the wire, polymorphic ones with their kind.
        Assert.Equal(accepted.RunId, (await grain.GetRunAsync(accepted.RunId, Ct))!.Id);
        Assert.IsType<CancelRunResult.AlreadyEnded>(await grain.CancelRunAsync(accepted.RunId, Ct));
        Assert.IsType<CancelRunResult.NotFound>(await grain.CancelRunAsync("run_missing", Ct));
        Assert.IsType<AppendMessagesResult.Appended>(await grain.AppendMessagesAsync([new NewMessage("user", "more")], Ct));
        var page = await grain.GetMessagesAsync(new MessagePageRequest(null, 10), Ct);
        Assert.Equal(["Hello there", completed.Content, "more"], page!.Data.Select(m => m.Content));
        Assert.Equal("v", (await grain.GetAsync(Ct))!.Metadata["k"]);
        Assert.Null(await gateway.Grains.GetGrain<IThreadGrain>(NewThreadId()).GetAsync(Ct));
    }

    [Fact]
    public async Task A_call_with_no_active_silo_fails_with_NoSiloAvailableException()
    {
        await using var gateway = await ClusterGateway.StartAsync(Fixture);

        await Assert.ThrowsAsync<NoSiloAvailableException>(() => gateway.Grains.GetGrain<IThreadGrain>(NewThreadId()).GetAsync(Ct));
    }

    [Fact]
    public async Task A_call_to_an_owner_that_cannot_be_reached_is_located_again_once_then_fails_as_unavailable()
    {
        await using var live = await TestSilo.StartAsync(Fixture, "silo_live");
        var database = await Fixture.OpenMigratedAsync();
        var closedPort = new TcpListener(System.Net.IPAddress.Loopback, 0);
        closedPort.Start();
        var deadAddress = $"http://127.0.0.1:{((System.Net.IPEndPoint)closedPort.LocalEndpoint).Port}/";
        closedPort.Stop();
        await new PostgresSiloDirectory(database).RegisterAsync("silo_dead", deadAddress, Ct);
        var threadId = NewThreadId();
        Assert.NotNull(await new PostgresThreadLeaseStore(database).TryAcquireAsync(threadId, "silo_dead", TimeSpan.FromMinutes(5), Ct));
        var unregistered = NewThreadId();
        Assert.NotNull(await new PostgresThreadLeaseStore(database).TryAcquireAsync(unregistered, "silo_gone", TimeSpan.FromMinutes(5), Ct));
        await using var gateway = await ClusterGateway.StartAsync(Fixture);

        var dead = await Assert.ThrowsAsync<ThreadNodeUnavailableException>(() => gateway.Grains.GetGrain<IThreadGrain>(threadId).GetAsync(Ct));
        var gone = await Assert.ThrowsAsync<ThreadNodeUnavailableException>(() => gateway.Grains.GetGrain<IThreadGrain>(unregistered).GetAsync(Ct));

        Assert.Equal("silo_dead", dead.SiloId);
        Assert.IsType<HttpRequestException>(dead.InnerException);
        Assert.Equal("silo_gone", gone.SiloId);
        Assert.Equal(0, live.CallCount); // a thread's calls never go around a live lease
    }

    [Fact]
    public async Task Two_local_subscribers_share_one_upstream_and_both_receive_every_event_and_it_closes_when_they_leave()
    {
        await using var silo = await TestSilo.StartAsync(Fixture, "silo_a");
        var threadId = NewThreadId();
        Assert.True(await silo.ActivateAsync(threadId));
        await using var gateway = await ClusterGateway.StartAsync(Fixture);

        var first = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        var second = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await WaitUntilAsync(() => Task.FromResult(silo.OpenEventStreams == 1), "the upstream is open");
        await silo.AppendAsync(threadId, 5);
        await first.WaitForAsync(5);
        await second.WaitForAsync(5);

        Assert.Equal(Range(1, 5), first.Sequences);
        Assert.Equal(Range(1, 5), second.Sequences);
        Assert.Equal(1, silo.EventRequestCount);
        Assert.Equal(1, gateway.Events.UpstreamCount);

        await first.DisposeAsync();
        Assert.Equal(1, gateway.Events.UpstreamCount); // still one subscriber
        await second.DisposeAsync();
        Assert.Equal(0, gateway.Events.UpstreamCount);
        await WaitUntilAsync(() => Task.FromResult(silo.OpenEventStreams == 0), "the silo sees the upstream close");
    }

    [Fact]
    public async Task Subscribers_resuming_after_a_sequence_get_no_gap_and_no_duplicate_from_log_tail_and_live()
    {
        await using var silo = await TestSilo.StartAsync(Fixture, "silo_a");
        var threadId = NewThreadId();
        Assert.True(await silo.ActivateAsync(threadId));
        await using var gateway = await ClusterGateway.StartAsync(Fixture, o => o.TailCapacity = 3);
        await silo.AppendAsync(threadId, 4); // 1..4 before anyone watches: log only

        await using var watcher = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 2, Ct));
        await watcher.WaitForAsync(4);
        await silo.AppendAsync(threadId, 6); // 5..10 through the upstream; the tail keeps 8..10
        await watcher.WaitForAsync(10);
        await using var fromLogAndTail = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 5, Ct));
        await using var fromTail = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 8, Ct));
        await using var fromStart = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await fromLogAndTail.WaitForAsync(10);
        await fromTail.WaitForAsync(10);
        await fromStart.WaitForAsync(10);
        await silo.AppendAsync(threadId, 2);
        foreach (var subscriber in new[] { watcher, fromLogAndTail, fromTail, fromStart })
        {
            await subscriber.WaitForAsync(12);
        }

        Assert.Equal(Range(3, 12), watcher.Sequences);
        Assert.Equal(Range(6, 12), fromLogAndTail.Sequences);
        Assert.Equal(Range(9, 12), fromTail.Sequences);
        Assert.Equal(Range(1, 12), fromStart.Sequences);
        Assert.Equal(1, silo.EventRequestCount);
    }

    [Fact]
    public async Task When_the_owner_deactivates_the_upstream_waits_and_thread_activated_resumes_it_at_the_new_owner_without_gap()
    {
        await using var a = await TestSilo.StartAsync(Fixture, "silo_a");
        await using var b = await TestSilo.StartAsync(Fixture, "silo_b");
        var threadId = NewThreadId();
        Assert.True(await a.ActivateAsync(threadId));
        // Polling every 10 minutes: only the notification can wake the upstream within the test.
        await using var gateway = await ClusterGateway.StartAsync(Fixture);
        await using var subscriber = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await a.AppendAsync(threadId, 3);
        await subscriber.WaitForAsync(3);

        await gateway.PersistAsync(threadId, 4, 4); // in the log, never sent by silo_a
        await a.DeactivateAsync(threadId);
        await subscriber.WaitForAsync(4); // from the log: nobody owns the thread, the upstream is idle
        Assert.Equal(0, b.EventRequestCount);
        Assert.True(await b.ActivateAsync(threadId)); // lease, then NOTIFY thread_activated
        await b.AppendAsync(threadId, 2);
        await subscriber.WaitForAsync(6);

        Assert.Equal(Range(1, 6), subscriber.Sequences);
        Assert.Equal(["silo_a-0", "silo_a-1", "silo_a-2", "log-4", "silo_b-0", "silo_b-1"], subscriber.Received.Cast<TextDelta>().Select(d => d.Text));
        Assert.True(b.EventRequestCount >= 1);
    }

    [Fact]
    public async Task When_the_upstream_breaks_mid_stream_it_is_resolved_again_and_resumes_without_gap()
    {
        await using var silo = await TestSilo.StartAsync(Fixture, "silo_a");
        var threadId = NewThreadId();
        Assert.True(await silo.ActivateAsync(threadId));
        await using var gateway = await ClusterGateway.StartAsync(Fixture);
        await using var subscriber = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await WaitUntilAsync(() => Task.FromResult(silo.OpenEventStreams == 1), "the upstream is open");
        await silo.AppendAsync(threadId, 3);
        await subscriber.WaitForAsync(3);

        silo.AbortEventStreams(threadId);
        await silo.AppendAsync(threadId, 2);
        await WaitUntilAsync(() => Task.FromResult(silo.EventRequestCount >= 2 && silo.OpenEventStreams == 1), "the upstream reconnects", () => $"requests {silo.EventRequestCount}, open {silo.OpenEventStreams}, got [{string.Join(",", subscriber.Sequences)}]");
        await silo.AppendAsync(threadId, 2);
        await subscriber.WaitForAsync(7);

        Assert.Equal(Range(1, 7), subscriber.Sequences);
    }

    [Fact]
    public async Task An_event_beyond_the_next_sequence_is_preceded_by_the_missing_ones_from_the_log()
    {
        await using var silo = await TestSilo.StartAsync(Fixture, "silo_a");
        silo.DropFromStream = e => e.Sequence is 2 or 3;
        var threadId = NewThreadId();
        Assert.True(await silo.ActivateAsync(threadId));
        await using var gateway = await ClusterGateway.StartAsync(Fixture);
        await using var subscriber = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await WaitUntilAsync(() => Task.FromResult(silo.OpenEventStreams == 1), "the upstream is open");

        await silo.AppendAsync(threadId, 5);
        await subscriber.WaitForAsync(5);

        Assert.Equal(Range(1, 5), subscriber.Sequences);
        Assert.Equal(1, silo.EventRequestCount); // filled in, not by reconnecting
    }

    [Fact]
    public async Task When_nobody_owns_the_thread_subscribers_get_its_persisted_events_from_the_log()
    {
        await using var gateway = await ClusterGateway.StartAsync(Fixture, o => o.IdlePollInterval = TimeSpan.FromMilliseconds(50));
        var threadId = NewThreadId();
        await gateway.PersistAsync(threadId, 1, 4);

        await using var fromStart = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await fromStart.WaitForAsync(4);
        await gateway.PersistAsync(threadId, 5, 6); // found by the idle upstream's poll
        await using var resumed = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 2, Ct));
        await fromStart.WaitForAsync(6);
        await resumed.WaitForAsync(6);

        Assert.Equal(Range(1, 6), fromStart.Sequences);
        Assert.Equal(Range(3, 6), resumed.Sequences);
    }

    [Fact]
    public async Task A_subscriber_that_falls_too_far_behind_is_dropped_after_what_it_had_and_others_go_on()
    {
        await using var gateway = await ClusterGateway.StartAsync(Fixture, o =>
        {
            o.IdlePollInterval = TimeSpan.FromMilliseconds(50);
            o.SubscriberBufferCapacity = 2;
        });
        var threadId = NewThreadId();
        await gateway.PersistAsync(threadId, 1, 1);
        await using var slow = gateway.Events.SubscribeAsync(threadId, 0, Ct).GetAsyncEnumerator(Ct);
        Assert.True(await slow.MoveNextAsync());
        await using var fast = new TestSubscriber(gateway.Events.SubscribeAsync(threadId, 0, Ct));
        await fast.WaitForAsync(1);

        for (var from = 2L; from <= 10; from += 2)
        {
            // Two at a time: the fast subscriber's buffer (two events) never overflows.
            await gateway.PersistAsync(threadId, from, Math.Min(from + 1, 10));
            await fast.WaitForAsync(Math.Min(from + 1, 10));
        }

        var slowGot = new List<long> { slow.Current.Sequence };
        var overflow = await Assert.ThrowsAsync<SubscriberOverflowException>(async () =>
        {
            while (await slow.MoveNextAsync())
            {
                slowGot.Add(slow.Current.Sequence);
            }
        });

        Assert.Equal(Range(1, 3), slowGot);
        Assert.Contains("after sequence 3", overflow.Message, StringComparison.Ordinal);
        Assert.Equal(Range(1, 10), fast.Sequences);
    }

    [Fact]
    public void Rendezvous_hashing_is_stable_spreads_threads_and_moves_only_a_leaving_silos_threads()
    {
        SiloEntry Silo(string id) => new(id, $"http://{id}/", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, SiloStatuses.Active);
        var three = new[] { Silo("silo_a"), Silo("silo_b"), Silo("silo_c") };
        var two = new[] { three[0], three[2] };
        var threads = Enumerable.Range(0, 300).Select(i => $"thr_{i}").ToList();

        var before = threads.ToDictionary(t => t, t => SiloLocator.PickByRendezvous(t, three).SiloId);
        var after = threads.ToDictionary(t => t, t => SiloLocator.PickByRendezvous(t, two).SiloId);

        Assert.All(three, s => Assert.InRange(before.Values.Count(v => v == s.SiloId), 60, 140));
        Assert.All(threads.Where(t => before[t] != "silo_b"), t => Assert.Equal(before[t], after[t]));
        Assert.Equal(before, threads.ToDictionary(t => t, t => SiloLocator.PickByRendezvous(t, [.. three.Reverse()]).SiloId));
    }

    /// <summary>A lease store whose reads are stale: it always names the given owner.</summary>
    private sealed class StaleLeases(ThreadLease owner) : IThreadLeaseStore
    {
        public Task<ThreadLease?> GetOwnerAsync(string threadId, CancellationToken cancellationToken = default) => Task.FromResult<ThreadLease?>(owner);

        public Task<ThreadLease?> TryAcquireAsync(string threadId, string siloId, TimeSpan ttl, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<bool> RenewAsync(ThreadLease lease, TimeSpan ttl, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<bool> ReleaseAsync(ThreadLease lease, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
