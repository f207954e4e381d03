using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Conversations.Bench.Targets;

/// <summary>
/// The server under test as real processes: the gateway with its embedded silo (<see cref="StartEmbeddedAsync"/>) or
/// the cluster of <c>deploy/local-cluster.sh</c> (<see cref="StartClusterAsync"/>). Its CPU time and memory are the sum
/// over its processes.
/// </summary>
public sealed class ServerUnderTest : IAsyncDisposable
{
    private readonly Func<ValueTask> _stop;

    private ServerUnderTest(string kind, IReadOnlyList<Uri> gateways, IReadOnlyList<(string Name, int Pid)> nodes, string description, Func<ValueTask> stop)
    {
        Kind = kind;
        Gateways = gateways;
        Nodes = nodes;
        Description = description;
        _stop = stop;
    }

    public string Kind { get; }

    /// <summary>The gateways' base URLs; the first one takes the bench's requests.</summary>
    public IReadOnlyList<Uri> Gateways { get; }

    public Uri Gateway => Gateways[0];

    /// <summary>Every process of the server (embedded: one; cluster: silos and gateways; PostgreSQL is not counted).</summary>
    public IReadOnlyList<(string Name, int Pid)> Nodes { get; }

    public string Description { get; }

    public double CpuSeconds() => Nodes.Sum(n => ProcStats.CpuSeconds(n.Pid));

    public long RssBytes() => Nodes.Sum(n => ProcStats.RssBytes(n.Pid));

    /// <summary>
    /// Starts <c>src/Gateway/bin/Release/net10.0/Conversations.Gateway.dll</c> with its model at <paramref name="model"/>,
    /// in a temporary content root holding the gateway's appsettings.json, with the SQLite file in <c>data/</c> there
    /// (the layout of <c>dotnet run --project src/Gateway</c>) unless <paramref name="sqliteOutsideContentRoot"/>.
    /// </summary>
    public static async Task<ServerUnderTest> StartEmbeddedAsync(
        string repositoryRoot, Uri model, string workDirectory, bool sqliteOutsideContentRoot, CancellationToken cancellationToken)
    {
        var bin = Path.Combine(repositoryRoot, "src", "Gateway", "bin", "Release", "net10.0");
        var dll = Path.Combine(bin, "Conversations.Gateway.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build the bench in Release (dotnet build -c Release bench/Conversations.Bench) first.");
        }

        var contentRoot = Path.Combine(workDirectory, "gateway");
        Directory.CreateDirectory(contentRoot);
        File.Copy(Path.Combine(bin, "appsettings.json"), Path.Combine(contentRoot, "appsettings.json"), overwrite: true);
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["OPENAI_BASE_URL"] = new Uri(model, "v1").ToString(),
            ["OPENAI_API_KEY"] = "bench-key",
            ["OPENAI_MODEL"] = "fake-model",
        };
        var sqlite = Path.Combine(contentRoot, "data", "conversations.db");
        if (sqliteOutsideContentRoot)
        {
            sqlite = Path.Combine(workDirectory, "sqlite", "conversations.db");
            environment["Storage__SqlitePath"] = sqlite;
        }

        var (process, url) = await ChildProcess.StartAsync(
            "gateway", [dll, "--urls", "http://127.0.0.1:0"], contentRoot, environment, Path.Combine(workDirectory, "gateway.log"),
            "Now listening on: ", cancellationToken);
        var gateway = new Uri(url.ToString().TrimEnd('/') + "/");
        try
        {
            await WaitReadyAsync(gateway, cancellationToken);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }

        return new ServerUnderTest(
            "embedded", [gateway], [("gateway", process.Pid)],
            $"one process: {dll} (embedded silo, SQLite at {sqlite}, content root {contentRoot})",
            process.DisposeAsync);
    }

    /// <summary>
    /// Runs <c>deploy/local-cluster.sh start</c> (PostgreSQL, 2 silos, 2 gateways from the Release build, on free
    /// loopback ports, state in <paramref name="workDirectory"/>) with the silos' model at <paramref name="model"/>;
    /// disposing runs <c>clean</c>.
    /// </summary>
    public static async Task<ServerUnderTest> StartClusterAsync(string repositoryRoot, Uri model, string workDirectory, CancellationToken cancellationToken)
    {
        var script = Path.Combine(repositoryRoot, "deploy", "local-cluster.sh");
        var state = Path.Combine(workDirectory, "cluster");
        string Ports(int count) => string.Join(' ', Enumerable.Range(0, count).Select(_ => FreePort().ToString(CultureInfo.InvariantCulture)));
        var environment = new Dictionary<string, string>
        {
            ["CONVERSATIONS_CLUSTER_DIR"] = state,
            ["CONVERSATIONS_PG_PORT"] = Ports(1),
            ["CONVERSATIONS_SILO_PORTS"] = Ports(2),
            ["CONVERSATIONS_GATEWAY_PORTS"] = Ports(2),
            ["CONVERSATIONS_ORLEANS_PORTS"] = Ports(2),
            ["CONVERSATIONS_CLIENT_PORTS"] = Ports(2),
            ["SKIP_BUILD"] = "1",
            ["CONFIGURATION"] = "Release",
            ["OPENAI_BASE_URL"] = new Uri(model, "v1").ToString(),
            ["OPENAI_API_KEY"] = "bench-key",
            ["OPENAI_MODEL"] = "fake-model",
        };
        async Task<string> Script(string command)
        {
            var info = new ProcessStartInfo("bash", [script, command]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }

            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
            await process.WaitForExitAsync(CancellationToken.None);
            var text = await output + await errors;
            return process.ExitCode == 0 ? text : throw new InvalidOperationException($"local-cluster.sh {command} failed ({process.ExitCode}):\n{text}");
        }

        Console.WriteLine("  starting the cluster: deploy/local-cluster.sh start …");
        try
        {
            await Script("start");
        }
        catch
        {
            await Script("clean").ContinueWith(_ => { }, TaskScheduler.Default);
            throw;
        }

        var run = Path.Combine(state, "run");
        var nodes = Directory.GetFiles(run, "*.pid").Order(StringComparer.Ordinal)
            .Select(f => (Path.GetFileNameWithoutExtension(f), int.Parse(File.ReadAllText(f).Trim(), CultureInfo.InvariantCulture)))
            .ToList();
        var gateways = Directory.GetFiles(run, "gateway-*.url").Order(StringComparer.Ordinal)
            .Select(f => new Uri(File.ReadAllText(f).Trim())).ToList();
        return new ServerUnderTest(
            "cluster", gateways, nodes,
            $"deploy/local-cluster.sh: {string.Join(", ", nodes.Select(n => n.Item1))} and PostgreSQL (not counted), state {state}",
            async () => await Script("clean"));
    }

    public async ValueTask DisposeAsync() => await _stop();

    private static async Task WaitReadyAsync(Uri gateway, CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(gateway, "health/ready"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(120))
            {
                throw new InvalidOperationException($"{gateway} was not ready within 120 s.");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
