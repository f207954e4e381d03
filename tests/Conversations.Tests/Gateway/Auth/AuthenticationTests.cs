using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway.Auth;

/// <summary>A gateway with authentication on: who gets in, with what, and what they may do.</summary>
public sealed partial class AuthenticationTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Every_endpoint_but_health_answers_401_without_credentials()
    {
        await using var app = AuthSettings.App();
        var client = app.ClientWith(null);
        // Every endpoint the app maps, so a new one cannot be forgotten: its path with each parameter filled in.
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(method => (Method: method, Path: "/" + RouteParameter().Replace(e.RoutePattern.RawText!.Trim('/'), "x1"))))
            .Distinct()
            .ToList();

        var answers = new List<(string Method, string Path, HttpStatusCode Status, string? Challenge, string? ContentType)>();
        foreach (var (method, path) in endpoints)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
            }

            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Guard);
            answers.Add((method, path, response.StatusCode, response.Headers.WwwAuthenticate.ToString(), response.Content.Headers.ContentType?.MediaType));
        }

        Assert.True(endpoints.Count > 40, $"only {endpoints.Count} endpoints were found");
        Assert.Contains(answers, a => a.Path == "/admin/api-keys");
        Assert.Contains(answers, a => a.Path == "/ws");
        Assert.All(answers.Where(a => a.Path.StartsWith("/health", StringComparison.Ordinal)), a => Assert.NotEqual(HttpStatusCode.Unauthorized, a.Status));
        Assert.Equal(3, answers.Count(a => a.Path.StartsWith("/health", StringComparison.Ordinal)));
        Assert.All(answers.Where(a => !a.Path.StartsWith("/health", StringComparison.Ordinal)), a =>
        {
            Assert.True(a.Status == HttpStatusCode.Unauthorized, $"{a.Method} {a.Path} answered {(int)a.Status} without credentials");
            Assert.StartsWith("Bearer realm=\"conversations\"", a.Challenge);
            Assert.Equal("application/problem+json", a.ContentType);
        });
    }

    [Fact]
    public async Task Tokens_with_a_wrong_audience_issuer_signature_or_lifetime_and_unknown_keys_get_401()
    {
        await using var app = AuthSettings.App();
        var good = app.ClientWith(AuthSettings.Token("alice"));
        var credentials = new Dictionary<string, string>
        {
            ["wrong audience"] = AuthSettings.Token("alice", audience: "another-api"),
            ["wrong issuer"] = AuthSettings.Token("alice", issuer: "https://evil.test"),
            ["bad signature"] = AuthSettings.Token("alice", signingKey: "another-signing-key-of-at-least-32-bytes-xyz"),
            ["expired"] = AuthSettings.Token("alice", expires: DateTime.UtcNow.AddHours(-2)),
            ["no subject"] = AuthSettings.Token(null),
            ["not a token"] = "hello",
            ["unknown key"] = "ck_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        };

        using var accepted = await good.GetAsync("/threads/none", Guard);
        var refused = new Dictionary<string, (HttpStatusCode Status, string Challenge, string Detail)>();
        foreach (var (name, credential) in credentials)
        {
            using var response = await app.ClientWith(credential).GetAsync("/threads/none", Guard);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
            refused[name] = (response.StatusCode, response.Headers.WwwAuthenticate.ToString(), problem.GetProperty("detail").GetString()!);
        }

        Assert.Equal(HttpStatusCode.NotFound, accepted.StatusCode);
        Assert.All(refused, r =>
        {
            Assert.True(r.Value.Status == HttpStatusCode.Unauthorized, $"{r.Key}: {(int)r.Value.Status}");
            Assert.Contains("error=\"invalid_token\"", r.Value.Challenge);
        });
        Assert.Contains("audience", refused["wrong audience"].Detail, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("expired", refused["expired"].Detail, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("'sub'", refused["no subject"].Detail);
        Assert.Contains("API key", refused["unknown key"].Detail);
        // The refused credential is never echoed.
        Assert.DoesNotContain(refused, r => r.Value.Detail.Contains(credentials[r.Key], StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_api_key_is_shown_once_works_until_revoked_and_then_gets_401()
    {
        await using var app = AuthSettings.App();
        var admin = app.AdminKeyClient();

        using var issued = await admin.PostAsJsonAsync("/admin/api-keys", new { name = "ci robot", roles = Array.Empty<string>() }, Guard);
        var key = await issued.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var id = key.GetProperty("id").GetString()!;
        var secret = key.GetProperty("key").GetString()!;
        var listText = await admin.GetStringAsync("/admin/api-keys", Guard);
        var listed = JsonDocument.Parse(listText).RootElement.GetProperty("data").EnumerateArray().Single(k => k.GetProperty("id").GetString() == id);

        var robot = app.ClientWith(secret);
        var threadId = await robot.CreateThreadAsync(cancellationToken: Guard);
        var thread = await robot.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        var viaHeader = app.ClientWith(null);
        viaHeader.DefaultRequestHeaders.Add("X-Api-Key", secret);
        using var readViaHeader = await viaHeader.GetAsync($"/threads/{threadId}", Guard);
        using var robotIsNoAdmin = await robot.GetAsync("/admin/api-keys", Guard);

        using var revoked = await admin.DeleteAsync($"/admin/api-keys/{id}", Guard);
        using var afterRevoke = await robot.GetAsync($"/threads/{threadId}", Guard);
        using var revokedAgain = await admin.DeleteAsync($"/admin/api-keys/{id}", Guard);
        using var unknown = await admin.DeleteAsync("/admin/api-keys/0123456789abcdef", Guard);
        var listedAfter = (await admin.GetFromJsonAsync<JsonElement>("/admin/api-keys", Guard)).GetProperty("data").EnumerateArray().Single(k => k.GetProperty("id").GetString() == id);

        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        Assert.Equal($"/admin/api-keys/{id}", issued.Headers.Location?.OriginalString);
        Assert.StartsWith($"ck_{id}_", secret);
        Assert.Equal("ci robot", listed.GetProperty("name").GetString());
        Assert.False(listed.TryGetProperty("key", out _));
        Assert.DoesNotContain(secret, listText);
        Assert.DoesNotContain(secret[(4 + id.Length)..], listText);
        Assert.Equal($"key:{id}", thread.GetProperty("owner").GetString());
        Assert.Equal(HttpStatusCode.OK, readViaHeader.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, robotIsNoAdmin.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, revokedAgain.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(JsonValueKind.String, listedAfter.GetProperty("revokedAt").ValueKind);
    }

    [Fact]
    public async Task A_key_revoked_through_one_gateway_is_refused_at_once_by_another_of_the_cluster()
    {
        // Two gateways need a cluster to share: this test is cluster mode in both passes.
        await using var first = new GatewayApp(AuthSettings.Settings(), topology: GatewayTopology.Cluster);
        await using var second = GatewayApp.SecondGatewayOf(first, AuthSettings.Settings());
        using var issued = await first.AdminKeyClient().PostAsJsonAsync("/admin/api-keys", new { name = "roaming" }, Guard);
        var key = await issued.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var onSecond = second.ClientWith(key.GetProperty("key").GetString());

        var threadId = await onSecond.CreateThreadAsync(cancellationToken: Guard);
        using var readOnFirst = await first.ClientWith(key.GetProperty("key").GetString()).GetAsync($"/threads/{threadId}", Guard);
        using var revoked = await first.AdminKeyClient().DeleteAsync($"/admin/api-keys/{key.GetProperty("id").GetString()}", Guard);
        using var afterRevoke = await onSecond.GetAsync($"/threads/{threadId}", Guard);

        Assert.Equal(HttpStatusCode.OK, readOnFirst.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
    }

    [Fact]
    public async Task An_admin_key_issues_admin_keys_and_a_user_gets_403_on_agent_writes_and_key_management()
    {
        await using var app = AuthSettings.App();
        var admin = app.AdminKeyClient();
        using var issued = await admin.PostAsJsonAsync("/admin/api-keys", new { name = "operator", roles = new[] { "admin" } }, Guard);
        var operatorKey = (await issued.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("key").GetString()!;
        using var badRole = await admin.PostAsJsonAsync("/admin/api-keys", new { name = "x", roles = new[] { "root" } }, Guard);
        var user = app.ClientWith(AuthSettings.Token("alice"));
        var adminUser = app.ClientWith(AuthSettings.Token("root", roles: ["admin"]));
        var agent = new { name = "terse", instructions = "Answer in one sentence." };

        var userAnswers = new Dictionary<string, HttpStatusCode>();
        async Task Record(string name, Task<HttpResponseMessage> send)
        {
            using var response = await send;
            userAnswers[name] = response.StatusCode;
        }

        await Record("POST /agents", user.PostAsJsonAsync("/agents", agent, Guard));
        await Record("PUT /agents/default", user.PutAsJsonAsync("/agents/default", new { instructions = "Always answer in pirate speak." }, Guard));
        await Record("PATCH /agents/default", user.PatchAsJsonAsync("/agents/default", new { instructions = "Always answer in pirate speak." }, Guard));
        await Record("DELETE /agents/terse", user.DeleteAsync("/agents/terse", Guard));
        await Record("POST /agents/default (seed 003)", user.PostAsJsonAsync("/agents/default", new { instructions = "Always answer in pirate speak.", tools = Array.Empty<string>() }, Guard));
        await Record("POST /admin/api-keys", user.PostAsJsonAsync("/admin/api-keys", new { name = "mine" }, Guard));
        await Record("GET /admin/api-keys", user.GetAsync("/admin/api-keys", Guard));
        await Record("DELETE /admin/api-keys/{id}", user.DeleteAsync("/admin/api-keys/0123456789abcdef", Guard));
        using var forbidden = await user.PostAsJsonAsync("/agents", agent, Guard);
        var forbiddenProblem = await forbidden.Content.ReadFromJsonAsync<JsonElement>(Guard);
        using var readAgents = await user.GetAsync("/agents", Guard);
        using var readAgent = await user.GetAsync("/agents/default", Guard);
        using var readModels = await user.GetAsync("/models", Guard);
        using var created = await adminUser.PostAsJsonAsync("/agents", agent, Guard);
        using var patchedByKey = await app.ClientWith(operatorKey).PatchAsJsonAsync("/agents/terse", new { maxDepth = 3 }, Guard);
        var defaultAgent = await user.GetFromJsonAsync<JsonElement>("/agents/default", Guard);

        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);
        Assert.All(userAnswers, a => Assert.True(a.Value == HttpStatusCode.Forbidden, $"{a.Key}: {(int)a.Value}"));
        Assert.Contains("'admin' role", forbiddenProblem.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.OK, readAgents.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readAgent.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readModels.StatusCode);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, patchedByKey.StatusCode);
        Assert.NotEqual("Always answer in pirate speak.", defaultAgent.GetProperty("instructions").ValueKind == JsonValueKind.String ? defaultAgent.GetProperty("instructions").GetString() : null);
    }

    [Fact]
    public async Task Seed_001_completion_works_with_a_jwt_and_continues_its_conversation()
    {
        await using var app = AuthSettings.App();
        var user = app.ClientWith(AuthSettings.Token("alice"));

        using var first = await user.PostAsJsonAsync("/completion", new { message = "hello" }, Guard);
        var answer = await first.Content.ReadFromJsonAsync<JsonElement>(Guard);
        var conversationId = answer.GetProperty("conversation_id").GetString()!;
        using var second = await user.PostAsJsonAsync("/completion", new { message = "and again", conversation_id = conversationId }, Guard);
        var thread = await user.GetFromJsonAsync<JsonElement>($"/threads/{conversationId}", Guard);
        using var anonymous = await app.ClientWith(null).PostAsJsonAsync("/completion", new { message = "hello" }, Guard);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.False(string.IsNullOrEmpty(answer.GetProperty("content").GetString()));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("user:alice", thread.GetProperty("owner").GetString());
        Assert.Equal(4, thread.GetProperty("messageCount").GetInt32());
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task Wrong_auth_settings_stop_the_start_naming_each()
    {
        await using var app = AuthSettings.App(new Dictionary<string, string?>
        {
            ["Auth:Jwt:SigningKey"] = "too-short",
            ["Auth:Jwt:Audience"] = "",
            ["Auth:AdminApiKeys:0"] = "short",
        });

        var refused = Assert.ThrowsAny<Exception>(() => app.Client).ToString();

        Assert.Contains("Auth:Jwt:SigningKey must be at least 32 bytes", refused);
        Assert.Contains("Auth:Jwt:Audience is required", refused);
        Assert.Contains("Auth:AdminApiKeys:0 must be at least 32 characters", refused);
    }

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex RouteParameter();
}
