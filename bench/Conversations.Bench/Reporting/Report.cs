using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Bench.Scenarios;

namespace Conversations.Bench.Reporting;

/// <summary>Writes a bench run's results: <c>results.json</c> (everything, every run), <c>results.md</c> (tables of the
/// medians over runs, with ratios) and <c>chart.svg</c> (<see cref="SvgChart"/>).</summary>
public static class Report
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write(string folder, BenchOptions options, Dictionary<string, object> machine, IReadOnlyList<RunResult> runs, string commandLine)
    {
        var document = new Dictionary<string, object>
        {
            ["command"] = $"dotnet run -c Release --project bench/Conversations.Bench -- {commandLine}".TrimEnd(),
            ["machine"] = machine,
            ["options"] = options.Describe(),
            ["runs"] = runs,
        };
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(document, Json));
        File.WriteAllText(Path.Combine(folder, "results.md"), Markdown(options, machine, runs, (string)document["command"]));
        File.WriteAllText(Path.Combine(folder, "chart.svg"), SvgChart.Render(runs[^1], options));
    }

    public static string Markdown(BenchOptions options, Dictionary<string, object> machine, IReadOnlyList<RunResult> runs, string command)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Bench results: {options.Target}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`{command}`");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine["cpu"]}, {machine["cores"]} cores, {machine["memory"]}, {machine["os"]}, {machine["runtime"]}; load average {machine["loadAverage"]} at the start, {machine.GetValueOrDefault("loadAverageAtEnd")} at the end; started {machine["startedAt"]}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Server: {machine.GetValueOrDefault("serverDescription")}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"{runs.Count} run(s); with more than one, each figure is the median over runs (ratios are of the medians).");
        md.AppendLine();

        if (runs.All(r => r.Ttft is not null))
        {
            var paths = runs[0].Ttft!.Paths.Select(p => p.Path).ToList();
            double M(string path, Func<TtftPath, double> value) => Numbers.Median(runs.Select(r => value(r.Ttft!.Paths.Single(p => p.Path == path))));
            md.AppendLine(CultureInfo.InvariantCulture, $"## 1. Time to first token ({runs[0].Ttft!.Requests} requests per path per run, one at a time)");
            md.AppendLine();
            md.AppendLine("Added = the path's percentile minus the same percentile of calling the fake model directly.");
            md.AppendLine();
            md.AppendLine("| Path | TTFT p50 / p95 / p99 (ms) | Added p50 / p95 / p99 (ms) | Added ÷ naive proxy's added (p50 / p95 / p99) |");
            md.AppendLine("| --- | --- | --- | --- |");
            var naive = paths.Single(p => p == "naive proxy");
            foreach (var path in paths)
            {
                var ratio = path is "fake model direct" or "naive proxy" ? "" : string.Join(" / ",
                    new Func<TtftPath, double>[] { p => p.AddedP50Ms, p => p.AddedP95Ms, p => p.AddedP99Ms }
                        .Select(f => Ratio(M(path, f), M(naive, f))));
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {path} | {F2(M(path, p => p.TtftMs.P50))} / {F2(M(path, p => p.TtftMs.P95))} / {F2(M(path, p => p.TtftMs.P99))} | {(path == "fake model direct" ? "—" : $"{F2(M(path, p => p.AddedP50Ms))} / {F2(M(path, p => p.AddedP95Ms))} / {F2(M(path, p => p.AddedP99Ms))}")} | {ratio} |");
            }

            md.AppendLine();
        }

        if (runs.All(r => r.Throughput is not null))
        {
            var keys = runs[0].Throughput!.Select(t => (t.Path, t.Streams)).ToList();
            double M((string Path, int Streams) key, Func<ThroughputRow, double> value) =>
                Numbers.Median(runs.Select(r => value(r.Throughput!.Single(t => t.Path == key.Path && t.Streams == key.Streams))));
            md.AppendLine(CultureInfo.InvariantCulture, $"## 2. Relay throughput ({options.StreamTokens} tokens per stream, written as fast as the fake can)");
            md.AppendLine();
            md.AppendLine("CPU is the relaying process's user + system time (/proc/<pid>/stat): the fake model itself on the direct path, the proxy process, the server's processes.");
            md.AppendLine();
            md.AppendLine("| Path | Streams | Deltas/s | Tokens/s | ÷ direct | ÷ naive proxy | CPU-s per 1,000 deltas | CPU ÷ naive proxy's |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var key in keys)
            {
                var direct = ("fake model direct", key.Streams);
                var naive = ("naive proxy", key.Streams);
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {key.Path} | {key.Streams} | {F0(M(key, t => t.DeltasPerSecond))} | {F0(M(key, t => t.TokensPerSecond))} | {Ratio(M(key, t => t.DeltasPerSecond), M(direct, t => t.DeltasPerSecond))} | {Ratio(M(key, t => t.DeltasPerSecond), M(naive, t => t.DeltasPerSecond))} | {M(key, t => t.CpuSecondsPer1000Deltas).ToString("F4", CultureInfo.InvariantCulture)} | {Ratio(M(key, t => t.CpuSecondsPer1000Deltas), M(naive, t => t.CpuSecondsPer1000Deltas))} |");
            }

            md.AppendLine();
        }

        if (runs.All(r => r.Live is not null))
        {
            var keys = runs[0].Live!.Select(l => (l.Path, l.Runs)).ToList();
            double M((string Path, int Runs) key, Func<LiveRow, double> value) =>
                Numbers.Median(runs.Select(r => value(r.Live!.Single(l => l.Path == key.Path && l.Runs == key.Runs))));
            var interval = 1000.0 / options.TokenRate;
            md.AppendLine(CultureInfo.InvariantCulture, $"## 3a. Concurrent live runs at {options.TokenRate} tokens/s ({options.LiveTokens} tokens each; ideal gap {F0(interval)} ms, goal p95 ≤ {F0(LiveRuns.GoalMs(interval))} ms)");
            md.AppendLine();
            md.AppendLine("| Path | Live runs | Gap p50 / p95 / p99 / max (ms) | p95 within goal | TTFT p50 / p95 (ms) | Run length p50 / max (s; ideal) | Relay CPU (cores) |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
            foreach (var key in keys)
            {
                var p95 = M(key, l => l.GapMs.P95);
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {key.Path} | {key.Runs} | {F1(M(key, l => l.GapMs.P50))} / {F1(p95)} / {F1(M(key, l => l.GapMs.P99))} / {F1(M(key, l => l.GapMs.Max))} | {(p95 <= LiveRuns.GoalMs(interval) ? "yes" : "**no**")} | {F1(M(key, l => l.TtftMs.P50))} / {F1(M(key, l => l.TtftMs.P95))} | {F2(M(key, l => l.RunSeconds.P50))} / {F2(M(key, l => l.RunSeconds.Max))} ({F2(M(key, l => l.IdealRunSeconds))}) | {F2(M(key, l => l.RelayCores))} |");
            }

            foreach (var path in keys.Select(k => k.Path).Distinct())
            {
                var within = keys.Where(k => k.Path == path && M(k, l => l.GapMs.P95) <= LiveRuns.GoalMs(interval)).Select(k => k.Runs).ToList();
                md.AppendLine();
                md.Append(CultureInfo.InvariantCulture, $"Largest N measured within the goal, {path}: {(within.Count > 0 ? within.Max().ToString(CultureInfo.InvariantCulture) : "none")}.");
            }

            md.AppendLine();
            md.AppendLine();
        }

        if (runs.All(r => r.Idle is not null))
        {
            md.AppendLine("## 3b. Memory of idle threads and subscribers (server VmRSS deltas ÷ N)");
            md.AppendLine();
            md.AppendLine("| N | KiB per idle thread (active grain) | KiB per idle SSE subscriber | KiB per bare keep-alive connection |");
            md.AppendLine("| --- | --- | --- | --- |");
            foreach (var n in runs[0].Idle!.Select(i => i.N))
            {
                double M(Func<IdleRow, double> value) => Numbers.Median(runs.Select(r => value(r.Idle!.Single(i => i.N == n))));
                md.AppendLine(CultureInfo.InvariantCulture, $"| {n} | {F1(M(i => i.KiBPerIdleThread))} | {F1(M(i => i.KiBPerSubscriber))} | {F1(M(i => i.KiBPerBareConnection))} |");
            }

            md.AppendLine();
        }

        if (runs.All(r => r.FanOut is not null))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"## 4. Fan-out: one thread, S subscribers ({options.FanOutTokens} tokens at {options.TokenRate} tokens/s)");
            md.AppendLine();
            md.AppendLine("Delivery latency: from the fake model writing a token to a subscriber parsing the delta that holds it.");
            md.AppendLine();
            md.AppendLine("| Subscribers | Deliveries (of expected) | p50 (ms) | p99 (ms) | max (ms) | Server CPU (cores) |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- |");
            foreach (var s in runs[0].FanOut!.Select(f => f.Subscribers))
            {
                double M(Func<FanOutRow, double> value) => Numbers.Median(runs.Select(r => value(r.FanOut!.Single(f => f.Subscribers == s))));
                md.AppendLine(CultureInfo.InvariantCulture, $"| {s} | {F0(M(f => f.Deliveries))} ({F0(M(f => f.ExpectedDeliveries))}) | {F1(M(f => f.DeliveryMs.P50))} | {F1(M(f => f.DeliveryMs.P99))} | {F1(M(f => f.DeliveryMs.Max))} | {F2(M(f => f.RelayCores))} |");
            }

            md.AppendLine();
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"## 5. Failover ({options.FailoverWatchers} watchers, {options.FailoverTokens} tokens at {options.TokenRate} tokens/s, SIGKILL after 20 deltas)");
        md.AppendLine();
        var failovers = runs.SelectMany(r => r.Failover ?? []).ToList();
        if (failovers.Count == 0)
        {
            md.AppendLine("Not run (it needs `--target cluster`).");
            return md.ToString();
        }

        md.AppendLine("Silo: SIGKILL of the silo running the thread → each watcher's first event saying so (`agent.status` resuming or `run.failed`); watchers on both gateways. Gateway: SIGKILL of the gateway every watcher is on → each watcher's first event from the other gateway, reconnected with `Last-Event-ID`. Consistent: the watcher's text equals the stored reply and its event ids strictly increase. Every round, across runs:");
        md.AppendLine();
        md.AppendLine("| Killed | Round | Node | Told p50 / max (ms) | Run end after kill p50 / max (ms) | Consistent watchers | Outcome | Node back in (s) |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var f in failovers)
        {
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {f.Kind} | {f.Round} | {f.Node} | {F0(f.ToldMs.P50)} / {F0(f.ToldMs.Max)} | {F0(f.EndMs.P50)} / {F0(f.EndMs.Max)} | {f.Consistent} / {f.Watchers} | {f.Outcome} | {F1(f.RestartSeconds)} |");
        }

        foreach (var kind in new[] { "silo", "gateway" })
        {
            var told = Summary.Of(failovers.Where(f => f.Kind == kind).Select(f => f.ToldMs.Max));
            md.AppendLine();
            md.Append(CultureInfo.InvariantCulture, $"{kind}: the last watcher told, over {told.Count} rounds: median {F0(told.P50)} ms, worst {F0(told.Max)} ms.");
        }

        md.AppendLine();
        var problems = failovers.SelectMany(f => f.Problems.Select(p => $"{f.Kind} #{f.Round}: {p}")).ToList();
        if (problems.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Problems: " + string.Join("; ", problems) + ".");
        }

        return md.ToString();
    }

    private static string Ratio(double value, double baseline) =>
        double.IsNaN(value) || double.IsNaN(baseline) || baseline == 0 ? "—" : (value / baseline).ToString("F2", CultureInfo.InvariantCulture) + "×";

    private static string F0(double value) => value.ToString("F0", CultureInfo.InvariantCulture);

    private static string F1(double value) => value.ToString("F1", CultureInfo.InvariantCulture);

    private static string F2(double value) => value.ToString("F2", CultureInfo.InvariantCulture);
}
