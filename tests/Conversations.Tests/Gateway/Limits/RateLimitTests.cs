using System.Net;
using System.Text.Json;
using Conversations.Tests.Gateway.Auth;

namespace Conversations.Tests.Gateway.Limits;

/// <summary>
/// <c>RateLimits:*</c>: a token bucket per caller (user or API key, else IP); over it, 429 with Retry-After and
/// ProblemDetails. On by default only with authentication configured.
/// </summary>
public sealed class RateLimitTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    // Three requests, refilled once an hour: nothing refills during the test.
    private static readonly Dictionary<string, string?> Tight = new() { ["RateLimits:PermitLimit"] = "3", ["RateLimits:Period"] = "01:00:00" };

    [Fact]
    public async Task With_authentication_each_caller_has_its_own_bucket_and_over_it_gets_429_with_retry_after()
    {
        await using var app = AuthSettings.App(Tight);
        using var alice = app.ClientWith(AuthSettings.Token("alice"));
        using var bob = app.ClientWith(AuthSettings.Token("bob"));

        for (var i = 0; i < 3; i++)
        {
            using var ok = await alice.GetAsync("/models", Guard);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var refused = await alice.GetAsync("/models", Guard);
        using var other = await bob.GetAsync("/models", Guard);
        using var admin = app.AdminKeyClient();
        using var byKey = await admin.GetAsync("/models", Guard);
        using var health = await alice.GetAsync("/health", Guard);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var retryAfter = Assert.Single(refused.Headers.GetValues("Retry-After"));
        Assert.True(long.Parse(retryAfter, System.Globalization.CultureInfo.InvariantCulture) >= 1, retryAfter);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(429, problem.GetProperty("status").GetInt32());
        Assert.Equal("RateLimits:PermitLimit", problem.GetProperty("limit").GetString());
        Assert.Equal(3, problem.GetProperty("maximum").GetInt32());
        // Another user, and an API key, have buckets of their own; health is never limited.
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Without_authentication_the_limiter_is_off_unless_enabled_and_then_counts_by_address()
    {
        await using (var open = new GatewayApp(Tight))
        {
            for (var i = 0; i < 6; i++)
            {
                using var ok = await open.Client.GetAsync("/models", Guard);
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }
        }

        await using var enabled = new GatewayApp(new Dictionary<string, string?>(Tight) { ["RateLimits:Enabled"] = "true" });
        _ = enabled.Client;
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            // A new connection each time: the bucket is the address's, not the connection's.
            using var client = enabled.CreateClient();
            using var response = await client.GetAsync("/models", Guard);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
    }
}
