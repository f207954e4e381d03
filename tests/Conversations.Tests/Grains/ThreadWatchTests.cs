using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Grains;

/// <summary><see cref="IThreadGrain.WatchAsync"/>: the log after any sequence, then live, each event once, across activations.</summary>
/// <remarks>
/// When the watched activation goes, its watches end normally as soon as Orleans starts the deactivation (which
/// Orleans would otherwise hold back until the watchers' pending fetches returned); a watcher whose deactivation began
/// between two of its fetches sees the next fetch fail instead (<see cref="EnumerationAbortedException"/>: it reached
/// the next activation, which does not know the enumeration). Either way it calls again after the last sequence it got.
/// </remarks>
public sealed class ThreadWatchTests : GrainTestBase
{
    [Fact]
    public async Task Watch_replays_after_any_sequence_then_goes_live_with_no_gap_or_duplicate_across_a_deactivation()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(
            ScriptedResponse.Text("a", "b", "c"),
            // Streams for seconds: the thread is deactivated in the middle of it.
            ScriptedResponse.Text(["x", "y", .. Enumerable.Range(1, 100).Select(i => $" z{i}")]).WithDelay(TimeSpan.FromMilliseconds(50)),
            ScriptedResponse.Text("d", "e"));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, Model = model });
        var (thread, created) = await CreateThreadAsync(grains);

        var first = await SendAsync(thread, "First");
        await WaitForRunEndAsync(thread, first);
        var stored = await grains.StoredEventsAsync(created.Id);
        Assert.IsType<RunCompleted>(stored[^1]);
        var last = stored[^1].Sequence;

        // After any sequence: the rest of the log, in order.
        for (var after = 0; after <= stored.Count; after++)
        {
            var replayed = await TakeAsync(thread, after, stored.Count - after);
            Assert.Equal(Describe(stored.Skip(after)), Describe(replayed));
        }

        // A watcher after the last event, which calls again with the last sequence it got whenever its watch ends.
        var yArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watches = 0;
        var seen = new List<ThreadEvent>();
        var watcher = Task.Run(async () =>
        {
            var guard = TestTimeouts.Guard();
            var from = last;
            while (true)
            {
                watches++;
                try
                {
                    await foreach (var next in thread.WatchAsync(from, guard))
                    {
                        seen.Add(next);
                        from = next.Sequence;
                        if (next is TextDelta { Text: "y" })
                        {
                            yArrived.TrySetResult();
                        }

                        if (next is RunCompleted)
                        {
                            return; // the third run's end: the first's came before the watch began
                        }
                    }
                }
                catch (EnumerationAbortedException)
                {
                    // The deactivation began between two fetches: the next reached the next activation. Call again.
                }
            }
        }, Ct);

        // Live: the second run streams to the watcher; the thread is deactivated in the middle of it.
        var second = await SendAsync(thread, "Second");
        await yArrived.Task.WaitAsync(TestTimeouts.Guard());
        var activation = grains.ActivationOf(thread);
        Assert.NotNull(activation);
        await grains.Cluster.DeactivateAsync(thread);

        // The next activation: the watcher came back with its last sequence; the third run streams to it.
        var third = await SendAsync(thread, "Third");
        await watcher.WaitAsync(TestTimeouts.Guard());

        Assert.True(watches >= 2, "The watch did not end when its activation did.");
        var all = await grains.StoredEventsAsync(created.Id);
        Assert.Equal(Describe(all.Where(e => e.Sequence > last)), Describe(seen));
        Assert.Equal(seen.Select(e => e.Sequence).Distinct().Order(), Sequences(seen));

        var interrupted = Assert.Single(seen.OfType<RunFailed>());
        Assert.Equal((second.RunId, RunErrorCodes.Interrupted), (interrupted.RunId, interrupted.Error.Code));
        Assert.Equal(interrupted.Sequence + 1, third.StartSequence);
        Assert.Equal(third.RunId, seen[^1].RunId);
        Assert.Equal(["x", "y"], seen.OfType<TextDelta>().Where(d => d.RunId == second.RunId).Select(d => d.Text).Take(2));
        Assert.Equal(["d", "e"], seen.OfType<TextDelta>().Where(d => d.RunId == third.RunId).Select(d => d.Text));

        // And once more from every sequence of the whole log, across the three runs and both activations.
        for (var after = 0; after <= all.Count; after++)
        {
            var replayed = await TakeAsync(thread, all.Take(after).LastOrDefault()?.Sequence ?? 0, all.Count - after);
            Assert.Equal(Describe(all.Skip(after)), Describe(replayed));
        }
    }

    [Fact]
    public async Task A_quiet_watched_thread_deactivates_without_waiting_for_its_watchers_and_they_go_on_with_the_next_activation()
    {
        // A response timeout longer than the test's guard: were the deactivation to wait for the watchers' pending
        // fetches (held open for half of it), the test would fail.
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2, ResponseTimeout = TestTimeouts.Default * 4 });
        var (thread, created) = await CreateThreadAsync(grains);
        var first = await SendAsync(thread, "What is 2 + 2?");
        var firstEvents = await WaitForRunEndAsync(thread, first);
        var last = firstEvents[^1].Sequence;

        // Three watchers from just before the first run's end: once each has it, its next fetch waits for more.
        var guard = TestTimeouts.Guard();
        var caughtUp = Enumerable.Range(0, 3).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToList();
        var watchers = caughtUp.Select(signal => Task.Run(async () =>
        {
            var seen = new List<ThreadEvent>();
            var ends = 0;
            var from = last - 1;
            while (true)
            {
                try
                {
                    await foreach (var next in thread.WatchAsync(from, guard))
                    {
                        seen.Add(next);
                        from = next.Sequence;
                        signal.TrySetResult();
                        if (next.IsTerminal && next.Sequence > last)
                        {
                            return (seen, ends);
                        }
                    }
                }
                catch (EnumerationAbortedException)
                {
                    // The deactivation began between two fetches (see the class remarks).
                }

                ends++;
            }
        }, Ct)).ToList();
        await Task.WhenAll(caughtUp.Select(c => c.Task)).WaitAsync(guard);

        await grains.Cluster.DeactivateAsync(thread).WaitAsync(guard);

        var second = await SendAsync(thread, "And 3 + 3?");
        var results = await Task.WhenAll(watchers).WaitAsync(guard);
        var stored = (await grains.StoredEventsAsync(created.Id)).Where(e => e.Sequence >= last).ToList();
        Assert.All(results, r =>
        {
            Assert.Equal(Describe(stored), Describe(r.seen));
            Assert.True(r.ends >= 1, "The watch did not end when its activation did.");
        });
        Assert.Equal(second.RunId, stored[^1].RunId);
    }

    private static List<(long Sequence, string Type, string RunId)> Describe(IEnumerable<ThreadEvent> events) =>
        [.. events.Select(e => (e.Sequence, e.Type, e.RunId))];
}
