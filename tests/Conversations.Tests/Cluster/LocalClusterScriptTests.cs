using System.Diagnostics;
using System.Text.Json;
using Conversations.Tests.Gateway;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Cluster;

/// <summary><c>deploy/local-cluster.sh</c> brings up PostgreSQL, two silos and two gateways, and stops exactly them.</summary>
public sealed class LocalClusterScriptTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_local_cluster_script_starts_a_working_cluster_and_stops_exactly_what_it_started()
    {
        var root = RepositoryRoot();
        var state = Path.Combine(Path.GetTempPath(), "conversations-tests", "local-cluster-" + Guid.NewGuid().ToString("N")[..8]);
        var ports = Enumerable.Range(0, 9).Select(_ => LoopbackPorts.Next()).ToArray();
        var environment = new Dictionary<string, string>
        {
            ["CONVERSATIONS_CLUSTER_DIR"] = state,
            ["CONVERSATIONS_PG_PORT"] = ports[0].ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CONVERSATIONS_SILO_PORTS"] = $"{ports[1]} {ports[2]}",
            ["CONVERSATIONS_GATEWAY_PORTS"] = $"{ports[3]} {ports[4]}",
            ["CONVERSATIONS_ORLEANS_PORTS"] = $"{ports[5]} {ports[6]}",
            ["CONVERSATIONS_CLIENT_PORTS"] = $"{ports[7]} {ports[8]}",
            ["SKIP_BUILD"] = "1",
            ["CONFIGURATION"] = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name,
            ["OPENAI_API_KEY"] = "",
            ["OPENAI_BASE_URL"] = "",
            ["DemoModel__TokenDelay"] = "00:00:00",
        };
        try
        {
            var (started, output) = await RunScriptAsync(root, "start", environment);
            Assert.True(started == 0, output);
            Assert.Contains($"Gateways:\n  http://127.0.0.1:{ports[3]}/\n  http://127.0.0.1:{ports[4]}/", output, StringComparison.Ordinal);
            Assert.Contains("Orleans membership: 2 silos active", output, StringComparison.Ordinal);
            using var a = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[3]}/") };
            using var b = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[4]}/") };

            var threadId = await a.CreateThreadAsync(cancellationToken: Guard);
            using var watcher = await b.OpenEventStreamAsync($"threads/{threadId}/events", lastEventId: "0", cancellationToken: Guard);
            var watched = watcher.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
            using var sent = await a.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "what is 17 * 23?" }, Guard);
            var result = await sent.Content.ReadFromJsonAsync<JsonElement>(Guard);
            var events = await watched;

            Assert.Equal("completed", result.GetProperty("status").GetString());
            Assert.Contains(events, e => e.Type == "tool_call.completed" && e.Str("result") == "391");
            var pids = Directory.GetFiles(Path.Combine(state, "run"), "*.pid").Select(f => int.Parse(File.ReadAllText(f).Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(4, pids.Count);

            // Each node reads its appsettings.json (the build output is its content root): the gateway's log levels
            // hold ASP.NET Core's per-request lines back, which a node started in an empty folder logs by default.
            var gatewayLog = await File.ReadAllTextAsync(Path.Combine(state, "logs", "gateway-1.log"), Guard);
            Assert.Contains("Now listening on", gatewayLog, StringComparison.Ordinal);
            Assert.DoesNotContain("Request starting", gatewayLog, StringComparison.Ordinal);

            var (stopped, stopOutput) = await RunScriptAsync(root, "stop", environment);
            Assert.True(stopped == 0, stopOutput);
            Assert.All(pids, pid => Assert.False(IsRunning(pid), $"process {pid} still runs"));
            await Assert.ThrowsAsync<HttpRequestException>(() => a.GetAsync("health", Guard));
        }
        finally
        {
            await RunScriptAsync(root, "clean", environment);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }


    private static Task<(int ExitCode, string Output)> RunScriptAsync(string root, string command, IDictionary<string, string> environment) =>
        RepositoryScripts.RunAsync(root, "bash", [Path.Combine(root, "deploy", "local-cluster.sh"), command], environment, Guard);

    private static string RepositoryRoot() => RepositoryScripts.Root();
}
