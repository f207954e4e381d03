using System.Collections.Concurrent;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.RunQueue;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Postgres;
using Npgsql;

namespace Conversations.Tests.Cluster.RunQueue;

public sealed class RunQueueTests : PostgresTestBase
{
    // Only a notification (or the re-read when listening starts) can wake these within a test's lifetime.
    private static readonly RunQueueOptions Quiet = new() { PollInterval = TimeSpan.FromMinutes(10), ReconnectDelay = TimeSpan.FromMilliseconds(50) };

    private static readonly RunQueueOptions Fast = new() { PollInterval = TimeSpan.FromMilliseconds(100), ReconnectDelay = TimeSpan.FromMilliseconds(50) };

    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task An_enqueued_request_is_run_by_a_worker_and_its_waiter_is_woken_by_the_notification()
    {
        await using var gateway = new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Quiet);
        await using var silo = new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Quiet);
        var calls = new ConcurrentQueue<(string ThreadId, SendMessage Message)>();
        await using var worker = new RunQueueWorker(silo, "silo_a", (threadId, message, _) =>
        {
            calls.Enqueue((threadId, message));
            return Task.FromResult(Accepted(message.RunId!));
        }, Quiet);
        var message = new SendMessage("hello") { RunId = "run_1", Agent = "helper", Temperature = 0.5 };

        Assert.True(await gateway.EnqueueAsync("thr_1", message, Ct));
        var waiting = gateway.WaitForResultAsync("run_1", TestTimeouts.Guard());
        await WaitUntilAsync(() => Task.FromResult(gateway.WaiterCount == 1 && gateway.DoneListener.IsListening), "the waiter listens");
        Assert.False(waiting.IsCompleted);
        await worker.StartAsync(Ct);

        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_1")), await waiting);
        var call = Assert.Single(calls);
        Assert.Equal(("thr_1", message), call);
        Assert.Equal(("done", "silo_a", 1), await RowAsync(gateway.Database, "run_1"));
        Assert.Equal(0, gateway.WaiterCount);
    }

    [Fact]
    public async Task A_waiter_that_starts_after_the_request_ended_returns_at_once_and_an_unknown_run_is_not_found()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Quiet);
        await using var worker = new RunQueueWorker(queue, "silo_a", (_, m, _) => Task.FromResult(Accepted(m.RunId!)), Quiet);
        await queue.EnqueueAsync("thr_2", new SendMessage("hi") { RunId = "run_2" }, Ct);
        Assert.True(await queue.TryCancelQueuedAsync("run_2", Ct));
        await worker.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        await WaitUntilAsync(async () => (await RowAsync(database, "run_1")).Status == "done", "the request is done");

        // A new process (its own pool and listener) that never saw the notifications.
        await using var late = new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Quiet);

        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_1")), await late.WaitForResultAsync("run_1", TestTimeouts.Guard()));
        Assert.Equal(new RunQueueOutcome.Cancelled(), await late.WaitForResultAsync("run_2", TestTimeouts.Guard()));
        Assert.Equal(new RunQueueOutcome.NotFound(), await late.WaitForResultAsync("run_unknown", TestTimeouts.Guard()));
    }

    [Fact]
    public async Task Without_notifications_waiters_and_workers_fall_back_to_polling()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Fast);
        var ran = new ConcurrentQueue<string>();
        await using var worker = new RunQueueWorker(queue, "silo_a", (_, m, _) =>
        {
            ran.Enqueue(m.RunId!);
            return Task.FromResult(Accepted(m.RunId!));
        }, Fast);

        // A waiter already listening when the result is stored without a notification.
        await InsertSilentlyAsync(database, "run_1", "thr_1", status: "taken");
        var waiting = queue.WaitForResultAsync("run_1", TestTimeouts.Guard());
        await WaitUntilAsync(() => Task.FromResult(queue.WaiterCount == 1 && queue.DoneListener.IsListening), "the waiter listens");
        await ExecuteAsync(database, """UPDATE run_requests SET status = 'done', result = '{"kind":"threadNotFound"}' WHERE run_id = 'run_1';""");
        Assert.Equal(new RunQueueOutcome.Done(new SendMessageResult.ThreadNotFound()), await waiting);

        // A worker already listening when a request is inserted without a notification.
        await worker.StartAsync(Ct);
        await WaitUntilAsync(() => Task.FromResult(worker.IsListening), "the worker listens");
        await InsertSilentlyAsync(database, "run_2", "thr_2", status: "queued");
        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_2")), await queue.WaitForResultAsync("run_2", TestTimeouts.Guard()));
        Assert.Equal(["run_2"], ran);
    }

    [Fact]
    public async Task A_waiter_keeps_being_woken_after_its_listener_connection_is_killed()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Quiet);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var worker = new RunQueueWorker(queue, "silo_a", async (_, m, ct) =>
        {
            await gate.Task.WaitAsync(ct);
            return Accepted(m.RunId!);
        }, Quiet);
        await worker.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        var waiting = queue.WaitForResultAsync("run_1", TestTimeouts.Guard());
        await WaitUntilAsync(() => Task.FromResult(queue.DoneListener.ProcessId != 0), "the waiter listens");
        var killed = queue.DoneListener.ProcessId;

        await ExecuteAsync(database, $"SELECT pg_terminate_backend({killed});");
        await WaitUntilAsync(() => Task.FromResult(queue.DoneListener.ProcessId is not 0 && queue.DoneListener.ProcessId != killed), "the listener reconnects");
        gate.SetResult();

        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_1")), await waiting);
    }

    [Fact]
    public async Task Two_workers_run_each_of_many_requests_exactly_once()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Fast);
        var runs = new ConcurrentDictionary<string, int>();
        async Task<SendMessageResult> Handler(string threadId, SendMessage message, CancellationToken cancellationToken)
        {
            runs.AddOrUpdate(message.RunId!, 1, (_, n) => n + 1);
            await Task.Yield();
            return ResultFor(message.RunId!);
        }

        await using var a = new RunQueueWorker(new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Fast), "silo_a", Handler, Fast);
        await using var b = new RunQueueWorker(new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Fast), "silo_b", Handler, Fast);
        await a.StartAsync(Ct);
        await b.StartAsync(Ct);
        var ids = Enumerable.Range(0, 60).Select(i => $"run_{i}").ToArray();

        await Task.WhenAll(ids.Select((id, i) => queue.EnqueueAsync($"thr_{i % 30}", new SendMessage("hi") { RunId = id }, Ct)));
        var outcomes = await Task.WhenAll(ids.Select(id => queue.WaitForResultAsync(id, TestTimeouts.Guard())));

        Assert.Equal(ids.Select(id => new RunQueueOutcome.Done(ResultFor(id))), outcomes);
        Assert.Equal(ids.Order(), runs.Keys.Order());
        Assert.All(runs.Values, count => Assert.Equal(1, count));
        Assert.Equal(60, await CountAsync(database, "SELECT count(*) FROM run_requests WHERE status = 'done' AND attempts = 1;"));
    }

    [Fact]
    public async Task A_request_for_a_thread_leased_by_another_silo_waits_for_that_silo()
    {
        var database = await Fixture.OpenMigratedAsync();
        var leases = new PostgresThreadLeaseStore(database);
        Assert.NotNull(await leases.TryAcquireAsync("thr_owned", "silo_a", Long, Ct));
        await using var queue = new PostgresRunQueue(database, Fast);
        var ranOn = new ConcurrentDictionary<string, string>();
        RunQueueWorker Worker(string siloId) => new(queue, siloId, (_, m, _) =>
        {
            ranOn[m.RunId!] = siloId;
            return Task.FromResult(Accepted(m.RunId!));
        }, Fast);
        await using var b = Worker("silo_b");
        await b.StartAsync(Ct);

        await queue.EnqueueAsync("thr_owned", new SendMessage("hi") { RunId = "run_owned" }, Ct);
        await queue.EnqueueAsync("thr_free", new SendMessage("hi") { RunId = "run_free" }, Ct);

        // silo_b took the later request of a free thread, and left the earlier one of silo_a's thread alone.
        Assert.IsType<RunQueueOutcome.Done>(await queue.WaitForResultAsync("run_free", TestTimeouts.Guard()));
        Assert.Equal(("queued", (string?)null, 0), await RowAsync(database, "run_owned"));

        await using var a = Worker("silo_a");
        await a.StartAsync(Ct);

        Assert.IsType<RunQueueOutcome.Done>(await queue.WaitForResultAsync("run_owned", TestTimeouts.Guard()));
        Assert.Equal(new Dictionary<string, string> { ["run_free"] = "silo_b", ["run_owned"] = "silo_a" }, ranOn);
    }

    [Fact]
    public async Task A_request_for_a_thread_whose_lease_was_released_or_expired_is_taken_by_any_silo()
    {
        var database = await Fixture.OpenMigratedAsync();
        var leases = new PostgresThreadLeaseStore(database);
        var released = (await leases.TryAcquireAsync("thr_released", "silo_a", Long, Ct))!;
        Assert.NotNull(await leases.TryAcquireAsync("thr_expiring", "silo_a", TimeSpan.FromMilliseconds(300), Ct));
        await using var queue = new PostgresRunQueue(database, Fast);
        await using var b = new RunQueueWorker(queue, "silo_b", (_, m, _) => Task.FromResult(Accepted(m.RunId!)), Fast);
        await b.StartAsync(Ct);
        await queue.EnqueueAsync("thr_released", new SendMessage("hi") { RunId = "run_released" }, Ct);
        await queue.EnqueueAsync("thr_expiring", new SendMessage("hi") { RunId = "run_expiring" }, Ct);

        Assert.True(await leases.ReleaseAsync(released, Ct));

        Assert.IsType<RunQueueOutcome.Done>(await queue.WaitForResultAsync("run_released", TestTimeouts.Guard()));
        Assert.IsType<RunQueueOutcome.Done>(await queue.WaitForResultAsync("run_expiring", TestTimeouts.Guard()));
        Assert.Equal(("done", "silo_b", 1), await RowAsync(database, "run_released"));
        Assert.Equal(("done", "silo_b", 1), await RowAsync(database, "run_expiring"));
    }

    [Fact]
    public async Task A_threads_requests_run_one_at_a_time_in_enqueue_order_across_workers()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Fast);
        var order = new ConcurrentQueue<string>();
        var running = 0;
        var overlapped = false;
        async Task<SendMessageResult> Handler(string threadId, SendMessage message, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref running) > 1)
            {
                overlapped = true;
            }

            order.Enqueue(message.RunId!);
            await Task.Delay(5, cancellationToken); // widens the window in which an overlap would show
            Interlocked.Decrement(ref running);
            return Accepted(message.RunId!);
        }

        await using var a = new RunQueueWorker(new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Fast), "silo_a", Handler, Fast);
        await using var b = new RunQueueWorker(new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Fast), "silo_b", Handler, Fast);
        await a.StartAsync(Ct);
        await b.StartAsync(Ct);
        var ids = Enumerable.Range(0, 12).Select(i => $"run_{i:D2}").ToArray();

        foreach (var id in ids)
        {
            await queue.EnqueueAsync("thr_1", new SendMessage(id) { RunId = id }, Ct);
        }

        await Task.WhenAll(ids.Select(id => queue.WaitForResultAsync(id, TestTimeouts.Guard())));

        Assert.Equal(ids, order);
        Assert.False(overlapped);
    }

    [Fact]
    public async Task Cancelling_a_queued_request_tells_its_waiter_and_no_worker_ever_runs_it()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Quiet);
        var ran = new ConcurrentQueue<string>();
        await using var worker = new RunQueueWorker(queue, "silo_a", (_, m, _) =>
        {
            ran.Enqueue(m.RunId!);
            return Task.FromResult(Accepted(m.RunId!));
        }, Quiet);
        await queue.EnqueueAsync("thr_1", new SendMessage("first") { RunId = "run_1" }, Ct);
        var waiting = queue.WaitForResultAsync("run_1", TestTimeouts.Guard());
        await WaitUntilAsync(() => Task.FromResult(queue.WaiterCount == 1 && queue.DoneListener.IsListening), "the waiter listens");

        Assert.True(await queue.TryCancelQueuedAsync("run_1", Ct));

        Assert.Equal(new RunQueueOutcome.Cancelled(), await waiting);
        Assert.False(await queue.TryCancelQueuedAsync("run_1", Ct));
        Assert.False(await queue.TryCancelQueuedAsync("run_unknown", Ct));
        await worker.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("second") { RunId = "run_2" }, Ct);
        Assert.IsType<RunQueueOutcome.Done>(await queue.WaitForResultAsync("run_2", TestTimeouts.Guard()));
        Assert.Equal(["run_2"], ran);
        Assert.Equal(("cancelled", (string?)null, 0), await RowAsync(database, "run_1"));
    }

    [Fact]
    public async Task A_request_a_worker_has_taken_cannot_be_cancelled_from_the_queue()
    {
        await using var queue = new PostgresRunQueue(await Fixture.OpenMigratedAsync(), Quiet);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var worker = new RunQueueWorker(queue, "silo_a", async (_, m, ct) =>
        {
            entered.SetResult();
            await gate.Task.WaitAsync(ct);
            return Accepted(m.RunId!);
        }, Quiet);
        await worker.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        await entered.Task.WaitAsync(TestTimeouts.Guard());

        Assert.False(await queue.TryCancelQueuedAsync("run_1", Ct));

        gate.SetResult();
        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_1")), await queue.WaitForResultAsync("run_1", TestTimeouts.Guard()));
    }

    [Fact]
    public async Task A_request_whose_taker_does_not_finish_within_TakenTimeout_is_taken_again_elsewhere()
    {
        var database = await Fixture.OpenMigratedAsync();
        var options = new RunQueueOptions { PollInterval = TimeSpan.FromMilliseconds(100), TakenTimeout = TimeSpan.FromMilliseconds(500) };
        await using var queue = new PostgresRunQueue(database, options);
        var stuckCalls = 0;
        var stuck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = new RunQueueWorker(queue, "silo_a", async (_, m, ct) =>
        {
            Interlocked.Increment(ref stuckCalls);
            stuck.TrySetResult();
            await hang.Task.WaitAsync(ct);
            return new SendMessageResult.Accepted(m.RunId!, "from_a", 1);
        }, options);
        await a.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        await stuck.Task.WaitAsync(TestTimeouts.Guard());

        await using var b = new RunQueueWorker(queue, "silo_b", (_, m, _) =>
            Task.FromResult<SendMessageResult>(new SendMessageResult.Accepted(m.RunId!, "from_b", 1)), options);
        await b.StartAsync(Ct);

        Assert.Equal(
            new RunQueueOutcome.Done(new SendMessageResult.Accepted("run_1", "from_b", 1)),
            await queue.WaitForResultAsync("run_1", TestTimeouts.Guard()));
        Assert.Equal(("done", "silo_b", 2), await RowAsync(database, "run_1"));
        Assert.Equal(1, stuckCalls); // silo_a never retook the request it was still running
        hang.SetResult();
    }

    [Fact]
    public async Task A_handler_asking_to_retry_puts_the_request_back_for_the_silo_that_holds_the_thread()
    {
        var database = await Fixture.OpenMigratedAsync();
        var leases = new PostgresThreadLeaseStore(database);
        await using var queue = new PostgresRunQueue(database, Quiet);
        var ranOnA = 0;
        await using var a = new RunQueueWorker(queue, "silo_a", async (threadId, _, ct) =>
        {
            Interlocked.Increment(ref ranOnA);
            // Between the scan and the grain call, another silo activated the thread.
            Assert.NotNull(await leases.TryAcquireAsync(threadId, "silo_b", Long, ct));
            throw new RunQueueRetryException("owned by silo_b");
        }, Quiet);
        await using var b = new RunQueueWorker(queue, "silo_b", (_, m, _) => Task.FromResult(Accepted(m.RunId!)), Quiet);
        await a.StartAsync(Ct);
        await WaitUntilAsync(() => Task.FromResult(a.IsListening), "silo_a listens");

        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        await WaitUntilAsync(async () => (await RowAsync(database, "run_1")) is ("queued", null, 1), "silo_a puts the request back");
        await b.StartAsync(Ct);

        Assert.Equal(new RunQueueOutcome.Done(Accepted("run_1")), await queue.WaitForResultAsync("run_1", TestTimeouts.Guard()));
        Assert.Equal(("done", "silo_b", 2), await RowAsync(database, "run_1"));
        Assert.Equal(1, ranOnA);
    }

    [Fact]
    public async Task Stopping_a_worker_mid_call_puts_its_request_back()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Quiet);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var worker = new RunQueueWorker(queue, "silo_a", async (_, m, ct) =>
        {
            entered.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return Accepted(m.RunId!);
        }, Quiet);
        await worker.StartAsync(Ct);
        await queue.EnqueueAsync("thr_1", new SendMessage("hi") { RunId = "run_1" }, Ct);
        await entered.Task.WaitAsync(TestTimeouts.Guard());

        await worker.StopAsync(TestTimeouts.Guard());
        await worker.DisposeAsync();

        Assert.Equal(("queued", (string?)null, 1), await RowAsync(database, "run_1"));
    }

    [Fact]
    public async Task Enqueue_needs_a_run_id_and_keeps_the_first_request_of_a_run_id()
    {
        var database = await Fixture.OpenMigratedAsync();
        await using var queue = new PostgresRunQueue(database, Quiet);

        await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync("thr_1", new SendMessage("no run id"), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.EnqueueAsync("", new SendMessage("x") { RunId = "run_1" }, Ct));
        Assert.True(await queue.EnqueueAsync("thr_1", new SendMessage("first") { RunId = "run_1" }, Ct));
        Assert.False(await queue.EnqueueAsync("thr_1", new SendMessage("second") { RunId = "run_1" }, Ct));

        Assert.Equal(1, await CountAsync(database, "SELECT count(*) FROM run_requests WHERE payload ->> 'content' = 'first';"));
        Assert.Equal(1, await CountAsync(database, "SELECT count(*) FROM run_requests;"));
    }

    [Fact]
    public void Channels_are_qualified_by_the_schema_and_stay_within_the_identifier_limit()
    {
        Assert.Equal(new RunQueueChannels("run_requests", "run_request_done"), RunQueueChannels.For(null));
        Assert.Equal(new RunQueueChannels("s1.run_requests", "s1.run_request_done"), RunQueueChannels.For("s1"));

        var longA = RunQueueChannels.For(new string('a', 60) + "_x");
        var longB = RunQueueChannels.For(new string('a', 60) + "_y");

        Assert.All(new[] { longA.Requests, longA.Done, longB.Requests, longB.Done }, c => Assert.InRange(c.Length, 1, 63));
        Assert.NotEqual(longA.Done, longB.Done);
        Assert.EndsWith(".run_request_done", longA.Done, StringComparison.Ordinal);
    }

    private static SendMessageResult Accepted(string runId) => new SendMessageResult.Accepted(runId, $"msg_{runId}", 7);

    // Every kind of answer, so each goes through jsonb and back.
    private static SendMessageResult ResultFor(string runId) => (int.Parse(runId[4..], System.Globalization.CultureInfo.InvariantCulture) % 4) switch
    {
        0 => Accepted(runId),
        1 => new SendMessageResult.Rejected($"active_{runId}"),
        2 => new SendMessageResult.ThreadNotFound(),
        _ => new SendMessageResult.AgentNotFound($"agent_{runId}"),
    };

    private static async Task<(string Status, string? TakenBy, int Attempts)> RowAsync(PostgresDatabase database, string runId)
    {
        await using var command = database.DataSource.CreateCommand("SELECT status, taken_by, attempts FROM run_requests WHERE run_id = $1;");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = runId });
        await using var reader = await command.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct), $"No row for {runId}.");
        return (reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2));
    }

    private static async Task InsertSilentlyAsync(PostgresDatabase database, string runId, string threadId, string status)
    {
        await using var command = database.DataSource.CreateCommand(
            "INSERT INTO run_requests (run_id, thread_id, payload, status, taken_at) VALUES ($1, $2, $3::jsonb, $4, CASE WHEN $4 = 'taken' THEN now() END);");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = runId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = threadId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $$"""{"content":"hi","runId":"{{runId}}"}""" });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = status });
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task ExecuteAsync(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<long> CountAsync(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
