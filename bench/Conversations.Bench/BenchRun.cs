using System.Diagnostics;
using System.Globalization;
using Conversations.Bench.Client;
using Conversations.Bench.FakeModel;
using Conversations.Bench.NaiveProxy;
using Conversations.Bench.Reporting;
using Conversations.Bench.Scenarios;
using Conversations.Bench.Targets;

namespace Conversations.Bench;

/// <summary>One run of the bench: start the fake model, the naive proxy and the server under test, run the chosen
/// scenarios <c>--runs</c> times, write the results, stop everything it started.</summary>
public static class BenchRun
{
    public static async Task<int> RunAsync(string[] args)
    {
        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"bench: {e.Message}");
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(BenchOptions.Usage);
            return 0;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        var cancellationToken = cancel.Token;
        var root = RepositoryRoot();
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var results = Path.Combine(options.ResultsDirectory is { } given ? Path.GetFullPath(given) : Path.Combine(root, "bench", "results"), $"{stamp}-{options.Target}");
        var work = Path.Combine(Path.GetTempPath(), $"conversations-bench-{stamp}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(results);
        Directory.CreateDirectory(work);
        var machine = Machine.Describe();
        Console.WriteLine($"bench: {options.Target}, results in {results}, logs in {work}");
        Console.WriteLine($"  machine: {machine["cpu"]}, {machine["cores"]} cores, load {machine["loadAverage"]}");

        var self = typeof(BenchRun).Assembly.Location;
        var none = new Dictionary<string, string>();
        var runs = new List<RunResult>();
        var failed = false;
        var (fake, fakeUrl) = await ChildProcess.StartAsync("fake model", [self, FakeModelServer.Command], work, none, Path.Combine(work, "fake.log"), ChildProcess.ListeningPrefix, cancellationToken);
        await using (fake)
        {
            fakeUrl = Slash(fakeUrl);
            var (proxy, proxyUrl) = await ChildProcess.StartAsync("naive proxy", [self, NaiveProxyServer.Command, new Uri(fakeUrl, "v1").ToString()], work, none, Path.Combine(work, "proxy.log"), ChildProcess.ListeningPrefix, cancellationToken);
            await using (proxy)
            {
                proxyUrl = Slash(proxyUrl);
                var server = options.Target == "cluster"
                    ? await ServerUnderTest.StartClusterAsync(root, fakeUrl, work, cancellationToken)
                    : await ServerUnderTest.StartEmbeddedAsync(root, fakeUrl, work, options.SqliteOutsideContentRoot, cancellationToken);
                await using (server)
                {
                    Console.WriteLine($"  server: {server.Description}");
                    using var http = new HttpClient(new SocketsHttpHandler
                    {
                        MaxConnectionsPerServer = int.MaxValue,
                        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
                        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
                    })
                    { Timeout = Timeout.InfiniteTimeSpan };
                    var context = new BenchContext(options, fake, fakeUrl, proxy, proxyUrl, server, new StreamClient(http));
                    try
                    {
                        for (var run = 1; run <= options.Runs; run++)
                        {
                            Console.WriteLine($"  run {run}/{options.Runs}");
                            runs.Add(await RunScenariosAsync(context, run, cancellationToken));
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        failed = true;
                        await Console.Error.WriteLineAsync($"bench: a scenario failed: {e}");
                    }

                    machine["serverDescription"] = server.Description;
                }
            }
        }

        machine["loadAverageAtEnd"] = Machine.LoadAverage();
        if (runs.Count > 0)
        {
            Report.Write(results, options, machine, runs, string.Join(' ', args));
            Console.WriteLine($"bench: wrote {results}/results.json, results.md, chart.svg");
        }

        if (!options.KeepLogs && !failed)
        {
            Directory.Delete(work, recursive: true);
        }

        return failed ? 1 : 0;
    }

    private static async Task<RunResult> RunScenariosAsync(BenchContext context, int run, CancellationToken cancellationToken)
    {
        var result = new RunResult { Run = run, StartedAt = DateTimeOffset.UtcNow };
        var scenarios = context.Options.Scenarios;
        async Task<T> Timed<T>(string name, Func<Task<T>> scenario)
        {
            Console.WriteLine($"   {name} …");
            var watch = Stopwatch.StartNew();
            var value = await scenario();
            Console.WriteLine($"   {name}: {watch.Elapsed.TotalSeconds:F0} s");
            return value;
        }

        if (scenarios.Contains("ttft"))
        {
            result.Ttft = await Timed("time to first token", () => TimeToFirstToken.RunAsync(context, cancellationToken));
        }

        if (scenarios.Contains("throughput"))
        {
            result.Throughput = await Timed("relay throughput", () => RelayThroughput.RunAsync(context, cancellationToken));
        }

        if (scenarios.Contains("live"))
        {
            result.Live = await Timed("concurrent live runs", () => LiveRuns.RunAsync(context, cancellationToken));
        }

        if (scenarios.Contains("idle"))
        {
            result.Idle = await Timed("idle subscribers", () => IdleSubscribers.RunAsync(context, cancellationToken));
        }

        if (scenarios.Contains("fanout"))
        {
            result.FanOut = await Timed("fan-out", () => FanOut.RunAsync(context, cancellationToken));
        }

        // Last: it kills and restarts nodes.
        if (scenarios.Contains("failover"))
        {
            result.Failover = await Timed("failover", () => Failover.RunAsync(context, cancellationToken));
        }

        return result;
    }

    private static Uri Slash(Uri url) => new(url.ToString().TrimEnd('/') + "/");

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Conversations.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Conversations.sln not found above the bench's folder.");
    }
}

/// <summary>What one run of the scenarios measured (a scenario not run is null).</summary>
public sealed class RunResult
{
    public int Run { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public TtftResult? Ttft { get; set; }

    public IReadOnlyList<ThroughputRow>? Throughput { get; set; }

    public IReadOnlyList<LiveRow>? Live { get; set; }

    public IReadOnlyList<IdleRow>? Idle { get; set; }

    public IReadOnlyList<FanOutRow>? FanOut { get; set; }

    public IReadOnlyList<FailoverRow>? Failover { get; set; }
}

/// <summary>The machine the bench ran on.</summary>
public static class Machine
{
    public static Dictionary<string, object> Describe()
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var memory = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        return new Dictionary<string, object>
        {
            ["cpu"] = cpu,
            ["cores"] = Environment.ProcessorCount,
            ["memory"] = memory,
            ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            ["loadAverage"] = LoadAverage(),
            ["startedAt"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        };
    }

    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
