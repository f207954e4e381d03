using System.Diagnostics;
using Conversations.Bench.Client;
using Conversations.Bench.FakeModel;

namespace Conversations.Bench.Scenarios;

/// <summary>One path at one concurrency: deltas (SSE items with text) and tokens relayed per second, CPU per 1,000 deltas.</summary>
public sealed record ThroughputRow(
    string Path, int Streams, int TokensPerStream, long Deltas, long Tokens, double WallSeconds, double DeltasPerSecond,
    double TokensPerSecond, double CpuSeconds, double CpuSecondsPer1000Deltas, string CpuOf);

/// <summary>
/// Scenario 2: <c>streams</c> concurrent answers of <c>--stream-tokens</c> tokens each, written by the fake as fast as
/// it can, read to the end on each path. Wall time runs from the first request to the last stream's end; CPU is that
/// of the relaying process (the fake model itself on the direct path).
/// </summary>
public static class RelayThroughput
{
    public static readonly StreamPath[] Paths = [StreamPath.Direct, StreamPath.NaiveProxy, StreamPath.Native, StreamPath.OpenAi];

    public static async Task<IReadOnlyList<ThroughputRow>> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var rows = new List<ThroughputRow>();
        var tokens = context.Options.StreamTokens;
        var prompt = FakeModelServer.Prompt(tokens, 0);
        foreach (var streams in context.Options.Concurrency)
        {
            foreach (var path in Paths)
            {
                // A short untimed stream first: connections open, code jitted.
                await ReadAllAsync(context, path, FakeModelServer.Prompt(50, 0), await context.ThreadForAsync(path, cancellationToken), cancellationToken);
                var threads = new List<string?>();
                for (var i = 0; i < streams; i++)
                {
                    threads.Add(await context.ThreadForAsync(path, cancellationToken));
                }

                var cpu = context.RelayCpuSeconds(path);
                var start = Stopwatch.GetTimestamp();
                var counts = await Task.WhenAll(threads.Select(thread => Task.Run(() => ReadAllAsync(context, path, prompt, thread, cancellationToken), cancellationToken)));
                var wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
                var cpuUsed = context.RelayCpuSeconds(path) - cpu;
                var deltas = counts.Sum(c => c.Deltas);
                var tokenCount = counts.Sum(c => c.Tokens);
                if (tokenCount != (long)tokens * streams)
                {
                    throw new InvalidOperationException($"{path}: {tokenCount} tokens arrived of {(long)tokens * streams}.");
                }

                var row = new ThroughputRow(
                    BenchContext.Name(path), streams, tokens, deltas, tokenCount, wall, deltas / wall, tokenCount / wall, cpuUsed,
                    cpuUsed / deltas * 1000, path switch { StreamPath.Direct => "fake model", StreamPath.NaiveProxy => "proxy", _ => context.Server.Kind });
                Console.WriteLine($"    throughput {row.Path} x{streams}: {row.DeltasPerSecond:F0} deltas/s, {row.CpuSecondsPer1000Deltas:F4} CPU-s/1k");
                rows.Add(row);
            }
        }

        return rows;
    }

    private static async Task<(long Deltas, long Tokens)> ReadAllAsync(BenchContext context, StreamPath path, string prompt, string? thread, CancellationToken cancellationToken)
    {
        using var response = await context.Client.StartAsync(path, context.BaseUrl(path), prompt, thread, cancellationToken);
        long deltas = 0, tokens = 0;
        await foreach (var delta in StreamClient.ReadAsync(response, path, cancellationToken))
        {
            if (delta.Kind == DeltaKind.Text)
            {
                deltas++;
                tokens += FakeModelServer.CountTokens(delta.Text!);
            }
            else if (delta.Kind == DeltaKind.Failed)
            {
                throw new InvalidOperationException($"{path}: the run failed: {delta.Text}");
            }
        }

        return (deltas, tokens);
    }
}
