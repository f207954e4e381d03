using System.Diagnostics;
using System.Net.Http.Json;
using Conversations.Bench.Client;
using Conversations.Bench.FakeModel;
using Conversations.Bench.Reporting;

namespace Conversations.Bench.Scenarios;

/// <summary>One thread watched by S subscribers: how late each delta reached each subscriber.</summary>
public sealed record FanOutRow(int Subscribers, int Tokens, long Deliveries, long ExpectedDeliveries, Summary DeliveryMs, double RelayCores);

/// <summary>
/// Scenario 4: S subscribers open <c>GET /threads/{id}/events</c> on one thread (spread over the gateways), then one
/// send (<c>"wait": false</c>) makes the fake stream <c>--fanout-tokens</c> tokens at <c>--token-rate</c>. A
/// delivery's latency is the time the subscriber parsed the delta minus the time the fake model wrote its first token
/// (the token's text is that time), so it covers model → grain → gateway → subscriber.
/// </summary>
public static class FanOut
{
    public static async Task<IReadOnlyList<FanOutRow>> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var rows = new List<FanOutRow>();
        var options = context.Options;
        foreach (var subscribers in options.FanOut)
        {
            var thread = await context.Client.CreateThreadAsync(context.Server.Gateway, cancellationToken);
            var gateways = context.Server.Gateways;
            var watches = new List<HttpResponseMessage>(subscribers);
            for (var i = 0; i < subscribers; i++)
            {
                watches.Add(await context.Client.WatchAsync(gateways[i % gateways.Count], thread, cancellationToken));
            }

            var readers = watches.Select(w => Task.Run(() => ReadAsync(w, cancellationToken), cancellationToken)).ToArray();
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            var cpu = context.Server.CpuSeconds();
            var start = Stopwatch.GetTimestamp();
            using (var sent = await context.Client.Http.PostAsJsonAsync(
                new Uri(context.Server.Gateway, $"threads/{thread}/messages"),
                new { content = FakeModelServer.Prompt(options.FanOutTokens, 1000.0 / options.TokenRate), wait = false },
                cancellationToken))
            {
                sent.EnsureSuccessStatusCode();
            }

            var latencies = await Task.WhenAll(readers);
            var cores = (context.Server.CpuSeconds() - cpu) / Stopwatch.GetElapsedTime(start).TotalSeconds;
            foreach (var watch in watches)
            {
                watch.Dispose();
            }

            var all = latencies.SelectMany(l => l).ToArray();
            var row = new FanOutRow(subscribers, options.FanOutTokens, all.Length, (long)subscribers * options.FanOutTokens, Summary.Of(all), cores);
            Console.WriteLine($"    fan-out S={subscribers}: delivery p50 {row.DeliveryMs.P50:F1} p99 {row.DeliveryMs.P99:F1} ms ({row.Deliveries}/{row.ExpectedDeliveries} deliveries)");
            rows.Add(row);
        }

        return rows;
    }

    private static async Task<List<double>> ReadAsync(HttpResponseMessage watch, CancellationToken cancellationToken)
    {
        var latencies = new List<double>();
        await foreach (var delta in StreamClient.ReadAsync(watch, StreamPath.Native, cancellationToken))
        {
            if (delta.Kind == DeltaKind.Text && FakeModelServer.FirstTokenTime(delta.Text!) is { } written)
            {
                latencies.Add(Numbers.Ms(written, delta.ReceivedAt));
            }
        }

        return latencies;
    }
}
