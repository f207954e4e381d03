using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Gateway;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Cluster;

/// <summary>
/// The Aspire AppHost (deploy/AppHost), run as a real process: it brings up PostgreSQL, two silos and two gateways
/// that work as one cluster, and on SIGINT every process it started exits.
/// </summary>
public sealed class AppHostTests
{
    private const int SigInt = 2;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(180);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_app_host_starts_a_working_cluster_and_SIGINT_stops_every_process_it_started()
    {
        var root = RepositoryScripts.Root();
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var dll = Path.Combine(root, "deploy", "AppHost", "bin", configuration, "net10.0", "Conversations.AppHost.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the tests' project builds the AppHost first");
        var state = Path.Combine(Path.GetTempPath(), "conversations-tests", "apphost-" + Guid.NewGuid().ToString("N")[..8]);
        var ports = Enumerable.Range(0, 12).Select(_ => LoopbackPorts.Next()).ToArray();
        string P(int i) => ports[i].ToString(CultureInfo.InvariantCulture);
        var postgresPort = ports[0];

        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.Combine(root, "deploy", "AppHost"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        info.ArgumentList.Add(dll);
        foreach (var (key, value) in new Dictionary<string, string>
                 {
                     ["DOTNET_ENVIRONMENT"] = "Development",
                     ["ASPNETCORE_ENVIRONMENT"] = "Development",
                     ["ASPIRE_ALLOW_UNSECURED_TRANSPORT"] = "true",
                     ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{P(1)}",
                     ["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = $"http://127.0.0.1:{P(2)}",
                     ["ASPIRE_RESOURCE_SERVICE_ENDPOINT_URL"] = $"http://127.0.0.1:{P(3)}",
                     ["Conversations__StateDirectory"] = state,
                     ["Conversations__PostgresPort"] = P(0),
                     ["Conversations__SiloHttpPorts"] = $"{P(4)} {P(5)}",
                     ["Conversations__SiloPorts"] = $"{P(6)} {P(7)}",
                     ["Conversations__SiloGatewayPorts"] = $"{P(8)} {P(9)}",
                     ["Conversations__GatewayPorts"] = $"{P(10)} {P(11)}",
                     ["OPENAI_API_KEY"] = "",
                     ["OPENAI_BASE_URL"] = "",
                     ["DemoModel__TokenDelay"] = "00:00:00",
                 })
        {
            info.Environment[key] = value;
        }

        var output = new StringBuilder();
        using var appHost = new Process { StartInfo = info };
        appHost.OutputDataReceived += (_, e) => Append(output, e.Data);
        appHost.ErrorDataReceived += (_, e) => Append(output, e.Data);
        appHost.Start();
        appHost.BeginOutputReadLine();
        appHost.BeginErrorReadLine();
        var started = new List<ChildProcess>();
        try
        {
            using var a = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{P(10)}/"), Timeout = TimeSpan.FromSeconds(30) };
            using var b = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{P(11)}/"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitUntilHealthyAsync(appHost, output, a, b);

            started = ChildProcess.Find(appHost.Id, state, postgresPort);
            Assert.True(started.Count(p => p.Kind == "postgres") >= 1, Describe("no PostgreSQL server from the state folder", started, output));
            Assert.True(started.Count(p => p.Kind == "silo") == 2, Describe("not 2 silos", started, output));
            Assert.True(started.Count(p => p.Kind == "gateway") == 2, Describe("not 2 gateways", started, output));

            // Every .NET node exports OTLP to this run's dashboard.
            Assert.All(started.Where(p => p.Kind is "silo" or "gateway"), p => Assert.Contains(
                $"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{P(2)}", p.EnvironmentVariables(), StringComparer.Ordinal));

            var threadId = await a.CreateThreadAsync(cancellationToken: TestTimeouts.Guard());
            using var watcher = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: TestTimeouts.Guard());
            var watched = watcher.ReadEventsAsync(TestTimeouts.Guard()).ReadUntilAsync(SseEvents.IsRunEnd, TestTimeouts.Guard());
            using var sent = await a.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "what is 17 * 23?" }, TestTimeouts.Guard());
            var result = await sent.Content.ReadFromJsonAsync<JsonElement>(TestTimeouts.Guard());
            var events = await watched;
            Assert.Equal("completed", result.GetProperty("status").GetString());
            Assert.Contains(events, e => e.Type == "tool_call.completed" && e.Str("result") == "391");
            Assert.Contains(events, e => e.Type == "run.completed");

            // SIGINT, as Ctrl-C in the terminal sends it.
            Assert.Equal(0, Kill(appHost.Id, SigInt));
            using (var exit = new CancellationTokenSource(StopTimeout))
            {
                await appHost.WaitForExitAsync(exit.Token);
            }

            var deadline = DateTime.UtcNow + StopTimeout;
            while (started.Any(p => p.IsRunning()) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }

            Assert.True(started.All(p => !p.IsRunning()), Describe("still running after the AppHost exited", started.Where(p => p.IsRunning()), output));
            Assert.Empty(ChildProcess.Find(appHost.Id, state, postgresPort));
            await Assert.ThrowsAsync<HttpRequestException>(() => a.GetAsync("health", TestTimeouts.Guard()));
        }
        finally
        {
            await StopEverythingAsync(appHost, state, postgresPort, started);
            try
            {
                Directory.Delete(state, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static async Task WaitUntilHealthyAsync(Process appHost, StringBuilder output, params HttpClient[] gateways)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(StartTimeout);
        var pending = gateways.ToList();
        while (pending.Count > 0)
        {
            Assert.False(appHost.HasExited, $"the AppHost exited ({(appHost.HasExited ? appHost.ExitCode : 0)}) before both gateways were healthy:\n{Snapshot(output)}");
            foreach (var gateway in pending.ToList())
            {
                try
                {
                    using var response = await gateway.GetAsync("health/ready", timeout.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        pending.Remove(gateway);
                    }
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException) when (!timeout.IsCancellationRequested)
                {
                }
            }

            if (timeout.IsCancellationRequested)
            {
                Assert.Fail($"gateways {string.Join(", ", pending.Select(g => g.BaseAddress))} not healthy within {StartTimeout}:\n{Snapshot(output)}");
            }

            if (pending.Count > 0)
            {
                try
                {
                    await Task.Delay(500, timeout.Token);
                }
                catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
                {
                }
            }
        }
    }

    /// <summary>Whatever the test's outcome: SIGINT to the AppHost, then SIGKILL to it and to anything it left.</summary>
    private static async Task StopEverythingAsync(Process appHost, string state, int postgresPort, List<ChildProcess> known)
    {
        // dcp names the AppHost's pid on its command line (--monitor), so it is found after the AppHost exited too.
        var all = known.Concat(ChildProcess.Find(appHost.Id, state, postgresPort)).DistinctBy(p => p.Pid).ToList();
        if (!appHost.HasExited)
        {
            _ = Kill(appHost.Id, SigInt);
            using var exit = new CancellationTokenSource(StopTimeout);
            try
            {
                await appHost.WaitForExitAsync(exit.Token);
            }
            catch (OperationCanceledException)
            {
                appHost.Kill(entireProcessTree: true);
            }
        }

        foreach (var process in all.Concat(ChildProcess.Find(appHost.Id, state, postgresPort)).Where(p => p.IsRunning()))
        {
            _ = Kill(process.Pid, 9);
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Snapshot(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    private static string Describe(string problem, IEnumerable<ChildProcess> processes, StringBuilder output) =>
        $"{problem}: {string.Join("; ", processes.Select(p => $"{p.Pid} {p.Kind} {p.CommandLine}"))}\n{Snapshot(output)}";

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/> with kill(1); its exit code (0: sent).</summary>
    private static int Kill(int pid, int signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal.ToString(CultureInfo.InvariantCulture), pid.ToString(CultureInfo.InvariantCulture) }, RedirectStandardError = true })!;
        kill.WaitForExit();
        return kill.ExitCode;
    }

    /// <summary>
    /// A process the AppHost run started, found in /proc: the orchestrator (dcp, which detaches from the AppHost and
    /// watches it by pid), the PostgreSQL server on this run's data folder, and the silos and gateways, known by the
    /// connection string naming this run's PostgreSQL port.
    /// </summary>
    private sealed record ChildProcess(int Pid, string Kind, string CommandLine, string StartTime)
    {
        public static List<ChildProcess> Find(int appHostPid, string state, int postgresPort)
        {
            var marker = $"Cluster__PostgresConnectionString=Host=127.0.0.1;Port={postgresPort.ToString(CultureInfo.InvariantCulture)};";
            var found = new List<ChildProcess>();
            var byPid = new Dictionary<int, (int Parent, string CommandLine)>();
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
                {
                    continue;
                }

                var commandLine = Read(Path.Combine(dir, "cmdline"))?.Replace('\0', ' ').Trim();
                var stat = Read(Path.Combine(dir, "stat"));
                if (string.IsNullOrEmpty(commandLine) || stat is null)
                {
                    continue;
                }

                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                byPid[pid] = (int.Parse(fields[1], CultureInfo.InvariantCulture), commandLine);
                var kind = commandLine.Contains("postgres", StringComparison.Ordinal) && commandLine.Contains(state, StringComparison.Ordinal) ? "postgres"
                    : commandLine.Contains("Conversations.Silo", StringComparison.Ordinal) && HasEnvironment(dir, marker) ? "silo"
                    : commandLine.Contains("Conversations.Gateway", StringComparison.Ordinal) && HasEnvironment(dir, marker) ? "gateway"
                    : commandLine.Contains("dotnet run", StringComparison.Ordinal) && HasEnvironment(dir, marker) ? "dotnet-run"
                    : appHostPid > 0 && commandLine.Contains("dcp", StringComparison.Ordinal)
                        && commandLine.Contains($"--monitor {appHostPid.ToString(CultureInfo.InvariantCulture)} ", StringComparison.Ordinal) ? "dcp"
                    : null;
                if (kind is not null)
                {
                    found.Add(new ChildProcess(pid, kind, commandLine, fields[19]));
                }
            }

            // dcp's own helpers (its controllers, its process monitors) are children of the dcp found above.
            var dcp = found.Where(p => p.Kind == "dcp").Select(p => p.Pid).ToHashSet();
            foreach (var (pid, (parent, commandLine)) in byPid)
            {
                if (!found.Any(p => p.Pid == pid) && IsDescendant(pid, dcp, byPid))
                {
                    var start = Read($"/proc/{pid}/stat") is { } s ? s[(s.LastIndexOf(')') + 2)..].Split(' ')[19] : "";
                    found.Add(new ChildProcess(pid, commandLine.Contains("dcp", StringComparison.Ordinal) ? "dcp" : "other", commandLine, start));
                }
            }

            return found;
        }

        public bool IsRunning()
        {
            var stat = Read($"/proc/{Pid}/stat");
            if (stat is null)
            {
                return false;
            }

            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // Same pid and start time: the same process (pids get reused); a zombie has exited.
            return fields[17 + 2] == StartTime && fields[0] != "Z";
        }

        private static bool IsDescendant(int pid, HashSet<int> ancestors, Dictionary<int, (int Parent, string CommandLine)> byPid)
        {
            for (var current = pid; byPid.TryGetValue(current, out var entry) && current > 1;)
            {
                if (ancestors.Contains(entry.Parent))
                {
                    return true;
                }

                current = entry.Parent;
            }

            return false;
        }

        public IReadOnlyList<string> EnvironmentVariables() => Read($"/proc/{Pid}/environ")?.Split('\0') ?? [];

        private static bool HasEnvironment(string dir, string marker) =>
            Read(Path.Combine(dir, "environ")) is { } environment && environment.Split('\0').Any(v => v.StartsWith(marker, StringComparison.Ordinal));

        private static string? Read(string path)
        {
            try
            {
                return File.ReadAllText(path);
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }
    }
}
