using System.Collections.Concurrent;

namespace Conversations.Grains.Threads;

/// <summary>
/// The runs executing on this silo. When the host stops, they are ended first — each fails as interrupted and
/// tells its watchers why — while the silo can still deliver their last events; only then does Orleans stop.
/// </summary>
public sealed class ActiveRuns
{
    private readonly ConcurrentDictionary<object, Entry> _runs = new();

    /// <summary>How many runs execute on this silo now.</summary>
    public int Count => _runs.Count;

    internal void Add(object run, Action<string> interrupt, Func<Task> completion) => _runs[run] = new Entry(interrupt, completion);

    internal void Remove(object run) => _runs.TryRemove(run, out _);

    /// <summary>Interrupts every run with <paramref name="reason"/> and waits until each has ended (or the token fires).</summary>
    public async Task InterruptAllAsync(string reason, CancellationToken cancellationToken)
    {
        var runs = _runs.Values.ToList();
        foreach (var run in runs)
        {
            run.Interrupt(reason);
        }

        await Task.WhenAll(runs.Select(r => r.Completion())).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed record Entry(Action<string> Interrupt, Func<Task> Completion);
}
