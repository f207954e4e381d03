using System.Net;
using System.Text.Json;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Gateway.Agents;

/// <summary>
/// Agents written through the API live in the cluster's storage: they outlive the embedded process, and win over
/// configuration, which seeds the agents the API never wrote. Embedded in both passes: these restart the embedded
/// process on its SQLite file (a cluster's agents are seen across gateways in Conversations.Tests.Cluster).
/// </summary>
public sealed class AgentsPersistenceTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Configuration_seeds_agents_and_api_edits_win_across_a_restart()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var database = Path.Combine(directory, "agents.db");
        try
        {
            await using (var app = GatewayApp.Embedded(new Dictionary<string, string?>
            {
                ["Storage:SqlitePath"] = database,
                ["Agents:pirate:Instructions"] = "Arr, version one.",
                ["Agents:clerk:Instructions"] = "File it, version one.",
                ["Agents:retired:Instructions"] = "Retire me.",
            }))
            {
                var pirate = await app.Client.GetFromJsonAsync<JsonElement>("/agents/pirate", Guard);
                using var patched = await app.Client.SendJsonAsync(HttpMethod.Patch, "/agents/pirate", """{"instructions": "Edited through the API."}""", cancellationToken: Guard);
                using var created = await app.Client.SendJsonAsync(HttpMethod.Post, "/agents", """{"name": "helper", "temperature": 0.7, "historyBudget": 1200}""", cancellationToken: Guard);
                using var deleted = await app.Client.DeleteAsync("/agents/retired", Guard);

                Assert.Equal("configuration", pirate.Str("source"));
                Assert.Equal("Arr, version one.", pirate.Str("instructions"));
                Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
            }

            // The same file, configuration changed: the API's edits (and its delete) win; the rest follows configuration.
            await using var restarted = GatewayApp.Embedded(new Dictionary<string, string?>
            {
                ["Storage:SqlitePath"] = database,
                ["Agents:pirate:Instructions"] = "Arr, version two.",
                ["Agents:clerk:Instructions"] = "File it, version two.",
                ["Agents:retired:Instructions"] = "Retire me.",
                ["Agents:scribe:Instructions"] = "Write it down.",
            });
            var agents = (await restarted.Client.GetFromJsonAsync<JsonElement>("/agents?format=native", Guard))
                .GetProperty("data").EnumerateArray().ToDictionary(a => a.Str("name")!);

            Assert.Equal(["clerk", "default", "helper", "pirate", "scribe"], agents.Keys.Order(StringComparer.Ordinal));
            Assert.Equal("Edited through the API.", agents["pirate"].Str("instructions"));
            Assert.Equal("api", agents["pirate"].Str("source"));
            Assert.Equal(1, agents["pirate"].GetProperty("version").GetInt64());
            Assert.Equal("File it, version two.", agents["clerk"].Str("instructions"));
            Assert.Equal("configuration", agents["clerk"].Str("source"));
            Assert.Equal("Write it down.", agents["scribe"].Str("instructions"));
            Assert.Equal(0.7, agents["helper"].GetProperty("temperature").GetDouble());
            Assert.Equal(1200, agents["helper"].GetProperty("historyBudget").GetInt32());
            using var retired = await restarted.Client.GetAsync("/agents/retired", Guard);
            Assert.Equal(HttpStatusCode.NotFound, retired.StatusCode);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Fact]
    public async Task An_agent_created_through_the_api_survives_killing_the_process()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var environment = new Dictionary<string, string?> { ["Storage__SqlitePath"] = Path.Combine(directory, "restart.db"), ["DemoModel__TokenDelay"] = "00:00:00" };
        try
        {
            JsonElement before;
            await using (var node = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                using var created = await node.Client.SendJsonAsync(
                    HttpMethod.Post, "agents", """{"name": "survivor", "instructions": "Keep going.", "tools": ["calculate"], "maxDepth": 4}""", cancellationToken: Guard);
                before = await created.JsonAsync(Guard);
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);

                // A SIGKILL: the agent was stored before the 201.
                await node.KillAsync();
            }

            await using var restarted = await NodeProcess.StartGatewayAsync(environment, Guard);
            var after = await restarted.Client.GetFromJsonAsync<JsonElement>("agents/survivor", Guard);
            var threadId = await restarted.Client.CreateThreadAsync(cancellationToken: Guard);
            using var run = await restarted.Client.PostStreamAsync($"threads/{threadId}/messages", new { content = "what is 6 * 7?", stream = true, agent = "survivor" }, Guard);
            var events = await run.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

            Assert.Equal(before.GetRawText(), after.GetRawText());
            Assert.Equal("survivor", events[0].Str("agent"));
            Assert.Equal("run.completed", events[^1].Type);
            Assert.Contains(events, e => e.Type == "tool_call.completed" && e.Str("result") == "42");
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }
}
