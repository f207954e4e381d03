using System.Diagnostics;
using Conversations.Bench.Client;
using Conversations.Bench.FakeModel;
using Conversations.Bench.Reporting;

namespace Conversations.Bench.Scenarios;

/// <summary>N live runs at once on one path: inter-token gaps as the client saw them, how long runs took, the relay's CPU.</summary>
public sealed record LiveRow(
    string Path, int Runs, int TokensPerRun, double TokenIntervalMs, Summary GapMs, Summary TtftMs, Summary RunSeconds,
    double IdealRunSeconds, double WallSeconds, double RelayCores, bool WithinGoal, double[] GapSampleMs);

/// <summary>
/// Scenario 3a: N runs started together, each streaming <c>--live-tokens</c> tokens at <c>--token-rate</c> tokens/s,
/// through the native API (one new thread each) and, as the baseline, the naive proxy. The goal is a p95 gap of at
/// most 60 ms at 20 tokens/s (ideal: 50 ms).
/// </summary>
public static class LiveRuns
{
    /// <summary>The p95 gap goal: 60 ms at 20 tokens/s, the interval plus a fifth at other rates.</summary>
    public static double GoalMs(double intervalMs) => intervalMs * 1.2;

    public static readonly StreamPath[] Paths = [StreamPath.NaiveProxy, StreamPath.Native];

    public static async Task<IReadOnlyList<LiveRow>> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var interval = 1000.0 / options.TokenRate;
        var prompt = FakeModelServer.Prompt(options.LiveTokens, interval);
        var rows = new List<LiveRow>();
        foreach (var n in options.Live)
        {
            foreach (var path in Paths)
            {
                var threads = new List<string?>(n);
                for (var i = 0; i < n; i++)
                {
                    threads.Add(await context.ThreadForAsync(path, cancellationToken));
                }

                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                var cpu = context.RelayCpuSeconds(path);
                var start = Stopwatch.GetTimestamp();
                var results = await Task.WhenAll(threads.Select(thread => Task.Run(() => OneRunAsync(context, path, prompt, thread, cancellationToken), cancellationToken)));
                var wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
                var cores = (context.RelayCpuSeconds(path) - cpu) / wall;
                var gaps = results.SelectMany(r => r.Gaps).ToArray();
                var gapSummary = Summary.Of(gaps);
                var row = new LiveRow(
                    BenchContext.Name(path), n, options.LiveTokens, interval, gapSummary, Summary.Of(results.Select(r => r.TtftMs)),
                    Summary.Of(results.Select(r => r.Seconds)), (options.LiveTokens - 1) * interval / 1000, wall, cores,
                    gapSummary.P95 <= GoalMs(interval), Thin(gaps, 4000));
                Console.WriteLine($"    live {row.Path} N={n}: gap p50 {gapSummary.P50:F1} p95 {gapSummary.P95:F1} p99 {gapSummary.P99:F1} ms, runs p50 {row.RunSeconds.P50:F2} s max {row.RunSeconds.Max:F2} s, {cores:F2} cores");
                rows.Add(row);
            }
        }

        return rows;
    }

    private static async Task<(List<double> Gaps, double TtftMs, double Seconds)> OneRunAsync(
        BenchContext context, StreamPath path, string prompt, string? thread, CancellationToken cancellationToken)
    {
        var gaps = new List<double>();
        var start = Stopwatch.GetTimestamp();
        using var response = await context.Client.StartAsync(path, context.BaseUrl(path), prompt, thread, cancellationToken);
        long first = 0, previous = 0;
        await foreach (var delta in StreamClient.ReadAsync(response, path, cancellationToken))
        {
            if (delta.Kind == DeltaKind.Failed)
            {
                throw new InvalidOperationException($"{path}: a live run failed: {delta.Text}");
            }

            if (delta.Kind != DeltaKind.Text)
            {
                continue;
            }

            if (first == 0)
            {
                first = delta.ReceivedAt;
            }
            else
            {
                gaps.Add(Numbers.Ms(previous, delta.ReceivedAt));
            }

            previous = delta.ReceivedAt;
        }

        return (gaps, Numbers.Ms(start, first), Numbers.Ms(first, previous) / 1000);
    }

    /// <summary>At most <paramref name="count"/> evenly spaced values of the sorted sample, for the chart.</summary>
    public static double[] Thin(double[] values, int count)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length <= count)
        {
            return sorted;
        }

        return [.. Enumerable.Range(0, count).Select(i => sorted[(int)((long)i * (sorted.Length - 1) / (count - 1))])];
    }
}
