using System.Diagnostics;
using Conversations.Bench.Client;
using Conversations.Bench.FakeModel;
using Conversations.Bench.Reporting;

namespace Conversations.Bench.Scenarios;

/// <summary>Time to first token on one path: the summary and every sample (ms).</summary>
public sealed record TtftPath(string Path, Summary TtftMs, double AddedP50Ms, double AddedP95Ms, double AddedP99Ms, double[] SamplesMs);

public sealed record TtftResult(int Requests, int TokensPerAnswer, IReadOnlyList<TtftPath> Paths);

/// <summary>
/// Scenario 1: one request at a time, the paths in turn (so the machine's noise falls on all of them alike): from
/// sending the request to the first text delta parsed. "Added" is each percentile minus the same percentile of calling
/// the fake model directly. A native send goes to a thread created (untimed) just before it.
/// </summary>
public static class TimeToFirstToken
{
    private const int Tokens = 8;

    public static readonly StreamPath[] Paths = [StreamPath.Direct, StreamPath.NaiveProxy, StreamPath.Native, StreamPath.OpenAi];

    public static async Task<TtftResult> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var samples = Paths.ToDictionary(p => p, _ => new List<double>(options.Requests));
        var prompt = FakeModelServer.Prompt(Tokens, 0);
        var total = options.Warmup + options.Requests;
        for (var i = 0; i < total; i++)
        {
            for (var k = 0; k < Paths.Length; k++)
            {
                // Rotate the order so no path always follows the same one.
                var path = Paths[(i + k) % Paths.Length];
                var thread = await context.ThreadForAsync(path, cancellationToken);
                var ms = await MeasureAsync(context, path, prompt, thread, cancellationToken);
                if (i >= options.Warmup)
                {
                    samples[path].Add(ms);
                }
            }

            if ((i + 1) % 100 == 0)
            {
                Console.WriteLine($"    ttft: {i + 1}/{total}");
            }
        }

        var direct = Summary.Of(samples[StreamPath.Direct]);
        return new TtftResult(options.Requests, Tokens, [.. Paths.Select(path =>
        {
            var summary = Summary.Of(samples[path]);
            return new TtftPath(BenchContext.Name(path), summary, summary.P50 - direct.P50, summary.P95 - direct.P95, summary.P99 - direct.P99, [.. samples[path]]);
        })]);
    }

    private static async Task<double> MeasureAsync(BenchContext context, StreamPath path, string prompt, string? thread, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await context.Client.StartAsync(path, context.BaseUrl(path), prompt, thread, cancellationToken);
        double? first = null;
        await foreach (var delta in StreamClient.ReadAsync(response, path, cancellationToken))
        {
            if (delta.Kind == DeltaKind.Text && first is null)
            {
                first = Numbers.Ms(start, delta.ReceivedAt);
            }
            else if (delta.Kind == DeltaKind.Failed)
            {
                throw new InvalidOperationException($"{path}: the run failed: {delta.Text}");
            }
        }

        return first ?? throw new InvalidOperationException($"{path}: the stream ended without a text delta.");
    }
}
