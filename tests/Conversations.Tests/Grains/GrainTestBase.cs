using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Postgres;

namespace Conversations.Tests.Grains;

/// <summary>A grain test: a PostgreSQL schema of its own (<see cref="PostgresTestBase"/>) and helpers to start a <see cref="GrainCluster"/> on it.</summary>
public abstract class GrainTestBase : PostgresTestBase
{
    internal Task<GrainCluster> StartClusterAsync(GrainClusterOptions? options = null) => GrainCluster.StartAsync(Fixture, options);

    /// <summary>Creates a thread with a fresh id and returns its grain (through the cluster client).</summary>
    internal static async Task<(IThreadGrain Grain, ThreadSnapshot Snapshot)> CreateThreadAsync(GrainCluster grains, CreateThread? command = null)
    {
        var id = Ids.NewThreadId();
        var grain = grains.Thread(id);
        var snapshot = await grain.CreateAsync(command ?? new CreateThread(), Ct);
        Assert.NotNull(snapshot);
        return (grain, snapshot);
    }

    /// <summary>Starts a run and asserts it was accepted.</summary>
    internal static async Task<SendMessageResult.Accepted> SendAsync(IThreadGrain grain, string content)
    {
        var result = await grain.SendMessageAsync(new SendMessage(content), Ct);
        return Assert.IsType<SendMessageResult.Accepted>(result);
    }

    /// <summary>
    /// Watches from just before the run's first event until its end (run.completed, run.failed or run.cancelled) and
    /// returns the events seen, calling again with the last sequence when an enumeration ends (or fails) before the end.
    /// </summary>
    internal static async Task<List<ThreadEvent>> WaitForRunEndAsync(IThreadGrain grain, SendMessageResult.Accepted run)
    {
        var guard = TestTimeouts.Guard();
        var seen = new List<ThreadEvent>();
        var last = run.StartSequence - 1;
        while (true)
        {
            try
            {
                await foreach (var next in grain.WatchAsync(last, guard))
                {
                    seen.Add(next);
                    last = next.Sequence;
                    if (next.IsTerminal && next.RunId == run.RunId)
                    {
                        return seen;
                    }
                }
            }
            catch (Exception) when (!guard.IsCancellationRequested)
            {
                // The activation's silo went away (a crash test): call again, as a gateway does, once it is declared dead.
                await Task.Delay(200, guard);
            }
        }
    }

    /// <summary>The first <paramref name="count"/> events of a watch, then stops it.</summary>
    internal static async Task<List<ThreadEvent>> TakeAsync(IThreadGrain grain, long afterSequence, int count)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestTimeouts.Guard());
        var taken = new List<ThreadEvent>();
        if (count == 0)
        {
            return taken;
        }

        await foreach (var next in grain.WatchAsync(afterSequence, stop.Token))
        {
            taken.Add(next);
            if (taken.Count == count)
            {
                break;
            }
        }

        return taken;
    }

    /// <summary>Polls until <paramref name="read"/> gives a value <paramref name="done"/> accepts; fails after <see cref="TestTimeouts.Default"/>.</summary>
    internal static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, GrainCluster? grains = null)
    {
        T value = default!;
        await WaitUntilAsync(async () => done(value = await read()), what, grains is null ? null : () => $"Last value: {value}. Silo logs:{Environment.NewLine}{grains.Logs}");
        return value;
    }

    internal static long[] Sequences(IEnumerable<ThreadEvent> events) => [.. events.Select(e => e.Sequence)];
}
