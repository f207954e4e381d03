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
    private readonly List<(string Name, int Pid)> _nodes;
    private readonly Dictionary<string, NodeLaunch> _killed = new(StringComparer.Ordinal);

    private ServerUnderTest(string kind, IReadOnlyList<Uri> gateways, IReadOnlyList<(string Name, int Pid)> nodes, string description, Func<ValueTask> stop, string? clusterState = null)
    {
        Kind = kind;
        Gateways = gateways;
        _nodes = [.. nodes];
        Description = description;
        _stop = stop;
        ClusterState = clusterState;
    }

    /// <summary>The state directory of <c>deploy/local-cluster.sh</c> (run/, logs/), or null for the embedded server.</summary>
    public string? ClusterState { get; }

    public string Kind { get; }

    /// <summary>The gateways' base URLs; the first one takes the bench's requests.</summary>
    public IReadOnlyList<Uri> Gateways { get; }

    public Uri Gateway => Gateways[0];

    /// <summary>Every process of the server (embedded: one; cluster: silos and gateways; PostgreSQL is not counted).</summary>
    public IReadOnlyList<(string Name, int Pid)> Nodes => _nodes;

    public string Description { get; }

    public double CpuSeconds() => _nodes.Where(n => !_killed.ContainsKey(n.Name)).Sum(n => ProcStats.CpuSeconds(n.Pid));

    public long RssBytes() => _nodes.Where(n => !_killed.ContainsKey(n.Name)).Sum(n => ProcStats.RssBytes(n.Pid));

    /// <summary>A cluster node's log file (<c>logs/{name}.log</c> of the state directory).</summary>
    public string NodeLog(string name) =>
        Path.Combine(ClusterState ?? throw new InvalidOperationException("only a cluster has node logs"), "logs", name + ".log");

    /// <summary>The node whose base URL is <paramref name="gateway"/> (<c>run/{name}.url</c>).</summary>
    public string NodeNamed(Uri gateway) => Path.GetFileNameWithoutExtension(
        Directory.GetFiles(Path.Combine(ClusterState!, "run"), "*.url").Single(f => new Uri(File.ReadAllText(f).Trim()) == gateway));

    /// <summary>
    /// SIGKILLs a cluster node and answers the monotonic time of the signal. What it takes to start the node again
    /// (its command line, environment and working folder, read from /proc first) is kept for <see cref="RestartAsync"/>.
    /// </summary>
    public long Kill(string name)
    {
        var pid = _nodes.Single(n => n.Name == name).Pid;
        _killed[name] = NodeLaunch.Read(pid);
        var at = Stopwatch.GetTimestamp();
        if (!ProcStats.Signal(pid, "KILL"))
        {
            throw new InvalidOperationException($"kill -KILL {pid} ({name}) failed.");
        }

        return at;
    }

    /// <summary>
    /// Starts a killed node again as it ran (output appended to its log), records its new PID where
    /// <c>deploy/local-cluster.sh stop</c> finds it, and waits for its readiness endpoint.
    /// </summary>
    public async Task RestartAsync(string name, CancellationToken cancellationToken)
    {
        var launch = _killed[name];
        var run = Path.Combine(ClusterState!, "run");
        var info = new ProcessStartInfo("bash") { UseShellExecute = false, WorkingDirectory = launch.WorkingDirectory };
        foreach (var argument in (string[])["-c", "exec \"$@\" </dev/null >>\"$BENCH_NODE_LOG\" 2>&1", name, .. launch.CommandLine])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Clear();
        foreach (var (key, value) in launch.Environment)
        {
            info.Environment[key] = value;
        }

        info.Environment["BENCH_NODE_LOG"] = NodeLog(name);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {name} again.");
        await File.WriteAllTextAsync(Path.Combine(run, name + ".pid"), process.Id.ToString(CultureInfo.InvariantCulture) + "\n", cancellationToken);
        _nodes[_nodes.FindIndex(n => n.Name == name)] = (name, process.Id);
        _killed.Remove(name);
        var url = new Uri(File.ReadAllText(Path.Combine(run, name + ".url")).Trim());
        await WaitReadyAsync(url, cancellationToken);
    }

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
            async () => await Script("clean"),
            state);
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

/// <summary>How a running process was started, from /proc: enough to start it again the same way.</summary>
internal sealed record NodeLaunch(string[] CommandLine, IReadOnlyDictionary<string, string> Environment, string WorkingDirectory)
{
    public static NodeLaunch Read(int pid)
    {
        static string[] Nul(string path) => File.ReadAllText(path).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in Nul($"/proc/{pid}/environ"))
        {
            var at = pair.IndexOf('=', StringComparison.Ordinal);
            if (at > 0)
            {
                environment[pair[..at]] = pair[(at + 1)..];
            }
        }

        var directory = new DirectoryInfo($"/proc/{pid}/cwd").ResolveLinkTarget(returnFinalTarget: false)?.FullName
            ?? throw new InvalidOperationException($"no working folder for pid {pid}");
        return new NodeLaunch(Nul($"/proc/{pid}/cmdline"), environment, directory);
    }
}
