using System.Net;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Gateway.Auth;

/// <summary>
/// No secret ever leaves the server: with known secrets configured (the model's API key, the JWT signing key, an
/// admin key, the webhook signing secret, a tool's credential), full runs that succeed, whose model fails and whose
/// tool fails are made, and every byte that came back — streams, JSON, errors, the OpenAPI document, the ops
/// snapshot, the key list — and every log line are searched for each secret.
/// </summary>
public sealed class SecretsTests
{
    private const string ModelKey = "sk-model-secret-7f3a9c1e5b";
    private const string WebhookSecret = "whsec-secret-2d8b4e6a0c";
    private const string ToolKey = "tool-secret-9e1c3a5b7d";

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task No_secret_reaches_a_response_or_a_log_line_through_runs_that_succeed_and_fail()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_w", "get_weather", "{\"city\":\"Rome\"}")),
            ScriptedResponse.Text("Sunny in Rome."),
            ScriptedResponse.Error(500, "upstream exploded"),
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_f", "post_fail", "{}")),
            ScriptedResponse.Text("The tool failed."));
        var logs = new CapturedLogs();
        var settings = AuthSettings.Settings(new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = ModelKey,
            ["Webhooks:SigningSecret"] = WebhookSecret,
            ["TOOL_KEY"] = ToolKey,
            ["Tools:Http:get_weather:Description"] = "Weather.",
            ["Tools:Http:get_weather:Url"] = service.BaseUrl + "/weather/{city}",
            ["Tools:Http:get_weather:Headers:Authorization"] = "Bearer ${secret:TOOL_KEY}",
            ["Tools:Http:post_fail:Description"] = "Fails.",
            ["Tools:Http:post_fail:Url"] = service.BaseUrl + "/fail",
            ["Tools:Http:post_fail:Method"] = "POST",
            ["Tools:Http:post_fail:Headers:X-Key"] = "${secret:TOOL_KEY}",
            ["Agents:default:Tools:0"] = "get_weather",
            ["Agents:default:Tools:1"] = "post_fail",
        });
        await using var app = GatewayApp.WithModel(model, settings, services =>
            services.AddLogging(logging => logging.AddProvider(logs).SetMinimumLevel(LogLevel.Trace)));
        await using var receiver = await WebhookReceiver.StartAsync([], cancellationToken: Guard);
        var token = AuthSettings.Token("alice");
        var alice = app.ClientWith(token);
        var admin = app.AdminKeyClient();
        var seen = new StringBuilder();

        async Task<string> Read(HttpResponseMessage response)
        {
            var text = await response.Content.ReadAsStringAsync(Guard);
            seen.Append(response.Headers).Append(response.Content.Headers).Append(text).Append('\n');
            return text;
        }

        // An issued key is shown once, to the admin who asked; it is a secret from then on.
        using var issued = await admin.PostAsJsonAsync("/admin/api-keys", new { name = "ci" }, Guard);
        var issuedKey = JsonDocument.Parse(await issued.Content.ReadAsStringAsync(Guard)).RootElement.GetProperty("key").GetString()!;
        var keyClient = app.ClientWith(issuedKey);

        var threadId = await alice.CreateThreadAsync(cancellationToken: Guard);
        using (var ok = await alice.PostStreamAsync($"/threads/{threadId}/messages", new { content = "weather in Rome?", stream = true, webhook = receiver.Url }, Guard))
        {
            Assert.Contains("run.completed", await Read(ok), StringComparison.Ordinal);
        }

        using (var failed = await keyClient.PostAsJsonAsync($"/threads/{await keyClient.CreateThreadAsync(cancellationToken: Guard)}/messages", new { content = "fail please" }, Guard))
        {
            Assert.Contains("failed", await Read(failed), StringComparison.Ordinal);
        }

        using (var toolFails = await alice.PostAsJsonAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "call it" } } }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, toolFails.StatusCode);
            await Read(toolFails);
        }

        foreach (var path in new[]
        {
            $"/threads/{threadId}/messages?limit=100", $"/threads/{threadId}/runs", $"/threads/{threadId}/events?after=0&format=openai",
            "/openapi/v1.json", "/health", "/health/ready", "/agents?format=native", "/models", "/v1/models", "/admin/api-keys", "/ops/snapshot", "/threads",
        })
        {
            var client = path.StartsWith("/ops", StringComparison.Ordinal) || path.StartsWith("/admin", StringComparison.Ordinal) ? admin : alice;
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Guard);
            if (path.Contains("/events", StringComparison.Ordinal))
            {
                cts.CancelAfter(TimeSpan.FromSeconds(2));
            }

            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode}");
            try
            {
                await Read(response);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested && !Guard.IsCancellationRequested)
            {
                // A live stream: what it sent until now was read.
            }
        }

        await receiver.WaitForAsync(1, Guard);
        foreach (var delivery in receiver.Requests)
        {
            // The signature is made with the secret; the secret itself never travels.
            seen.Append(delivery.Body).Append(string.Join("\n", delivery.Headers.Select(h => $"{h.Key}: {h.Value}")));
        }

        string[] secrets = [ModelKey, WebhookSecret, ToolKey, AuthSettings.SigningKey, AuthSettings.AdminApiKey, issuedKey, token];
        var everything = seen.ToString();
        var logText = logs.AllText;
        Assert.Contains("tool_call.completed", everything, StringComparison.Ordinal);
        Assert.Contains(logs.Lines, l => l.Category.StartsWith("System.Net.Http", StringComparison.Ordinal));
        foreach (var secret in secrets)
        {
            Assert.False(everything.Contains(secret, StringComparison.Ordinal), $"A response held the secret {secret[..6]}…");
            Assert.False(logText.Contains(secret, StringComparison.Ordinal), $"A log line held the secret {secret[..6]}…");
        }

        // The tool's service got its credential: the secret was used, only where it belongs.
        Assert.Contains(service.Requests, r => r.Headers.TryGetValue("Authorization", out var value) && value == "Bearer " + ToolKey);
    }

    [Fact]
    public async Task With_authentication_on_the_ops_dashboard_is_for_admins_only()
    {
        await using var app = AuthSettings.App();

        using var anonymous = await app.ClientWith(null).GetAsync("/ops/snapshot", Guard);
        using var user = await app.ClientWith(AuthSettings.Token("bob")).GetAsync("/ops/snapshot", Guard);
        using var admin = await app.AdminKeyClient().GetAsync("/ops/snapshot", Guard);
        using var adminJwt = await app.ClientWith(AuthSettings.Token("carol", roles: ["admin"])).GetAsync("/ops/orleans/", Guard);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, user.StatusCode);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal(HttpStatusCode.OK, adminJwt.StatusCode);
    }
}
