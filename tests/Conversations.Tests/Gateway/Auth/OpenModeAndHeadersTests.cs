using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Gateway.Auth;

/// <summary>A server without authentication stays on loopback; CORS only for configured origins; pages carry security headers.</summary>
public sealed partial class OpenModeAndHeadersTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Without_auth_the_server_refuses_to_start_on_an_address_that_is_not_loopback()
    {
        await using var app = new GatewayApp(new Dictionary<string, string?> { ["Kestrel:Endpoints:Http:Url"] = "http://0.0.0.0:0" });

        var refused = Assert.ThrowsAny<Exception>(() => app.Client);

        var message = refused.ToString();
        Assert.Contains("Authentication is off", message);
        Assert.Contains("Auth:Jwt", message);
        Assert.Contains("Auth:AllowOpen", message);
        Assert.Contains("0.0.0.0", message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5000", true)]
    [InlineData("https://127.0.0.2:5001", true)]
    [InlineData("http://[::1]:5000", true)]
    [InlineData("http://localhost:5000", true)]
    [InlineData("http://0.0.0.0:5000", false)]
    [InlineData("http://[::]:8080", false)]
    [InlineData("http://+:80", false)]
    [InlineData("http://*:80", false)]
    [InlineData("http://10.1.2.3:80", false)]
    [InlineData("http://example.com:80", false)]
    public void Only_loopback_addresses_count_as_loopback(string address, bool loopback) =>
        Assert.Equal(loopback, Conversations.Gateway.Auth.OpenModeGuard.IsLoopback(address));

    [Fact]
    public async Task Without_auth_the_server_starts_on_loopback_or_with_AllowOpen_and_warns_that_it_is_open()
    {
        var loopbackLogs = new CapturedLogs();
        var exposedLogs = new CapturedLogs();
        await using var loopback = new GatewayApp(configureServices: s => s.AddSingleton<ILoggerProvider>(loopbackLogs));
        await using var exposed = new GatewayApp(
            new Dictionary<string, string?> { ["Kestrel:Endpoints:Http:Url"] = "http://0.0.0.0:0", ["Auth:AllowOpen"] = "true" },
            s => s.AddSingleton<ILoggerProvider>(exposedLogs));

        using var onLoopback = await loopback.Client.PostAsJsonAsync("/threads", new { }, Guard);
        // 0.0.0.0 is every address, loopback among them.
        using var viaLoopback = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{exposed.Client.BaseAddress!.Port}") };
        using var onAnyAddress = await viaLoopback.GetAsync("/health", Guard);

        Assert.Equal(HttpStatusCode.Created, onLoopback.StatusCode);
        Assert.Equal(HttpStatusCode.OK, onAnyAddress.StatusCode);
        var warning = Assert.Single(loopbackLogs.Lines, l => l.EventId.Id == 3100);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("loopback only (http://127.0.0.1:", warning.Message);
        var exposedWarning = Assert.Single(exposedLogs.Lines, l => l.EventId.Id == 3101);
        Assert.Equal(LogLevel.Warning, exposedWarning.Level);
        Assert.Contains("every caller on http://0.0.0.0:", exposedWarning.Message);
    }

    [Fact]
    public async Task Cors_answers_only_the_configured_origins_with_the_headers_streams_and_auth_need()
    {
        await using var app = AuthSettings.App(new Dictionary<string, string?> { ["Cors:AllowedOrigins:0"] = "https://app.example" });
        await using var plain = new GatewayApp();
        var anonymous = app.ClientWith(null);
        var user = app.ClientWith(AuthSettings.Token("alice"));

        using var preflight = await anonymous.SendAsync(Preflight("/threads", "https://app.example"), Guard);
        using var evilPreflight = await anonymous.SendAsync(Preflight("/threads", "https://evil.example"), Guard);
        using var allowed = await user.SendAsync(WithOrigin(HttpMethod.Get, "/agents", "https://app.example"), Guard);
        using var other = await user.SendAsync(WithOrigin(HttpMethod.Get, "/agents", "https://evil.example"), Guard);
        using var unconfigured = await plain.Client.SendAsync(WithOrigin(HttpMethod.Get, "/agents", "https://app.example"), Guard);
        using var unconfiguredPreflight = await plain.Client.SendAsync(Preflight("/threads", "https://app.example"), Guard);

        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Equal("https://app.example", Header(preflight, "Access-Control-Allow-Origin"));
        var allowedHeaders = Header(preflight, "Access-Control-Allow-Headers")!.ToLowerInvariant();
        Assert.Contains("authorization", allowedHeaders);
        Assert.Contains("last-event-id", allowedHeaders);
        Assert.Contains("content-type", allowedHeaders);
        Assert.Null(Header(evilPreflight, "Access-Control-Allow-Origin"));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("https://app.example", Header(allowed, "Access-Control-Allow-Origin"));
        Assert.Null(Header(allowed, "Access-Control-Allow-Credentials"));
        Assert.Null(Header(other, "Access-Control-Allow-Origin"));
        Assert.Null(Header(unconfigured, "Access-Control-Allow-Origin"));
        Assert.Null(Header(unconfiguredPreflight, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Pages_carry_a_content_security_policy_frame_denial_and_no_sniffing()
    {
        await using var app = new GatewayApp();

        using var docs = await app.Client.GetAsync("/docs", Guard);
        var html = await docs.Content.ReadAsStringAsync(Guard);
        using var json = await app.Client.GetAsync("/health", Guard);

        var policy = Header(docs, "Content-Security-Policy")!;
        Assert.Contains("default-src 'self'", policy);
        Assert.Contains("frame-ancestors 'none'", policy);
        Assert.DoesNotContain("unsafe-inline", policy);
        // The page's one inline script and stylesheet are allowed by their hashes, so the page still works.
        Assert.Contains($"script-src '{InlineHash(html, "script")}'", policy);
        Assert.Contains($"style-src '{InlineHash(html, "style")}'", policy);
        Assert.DoesNotContain(" style=\"", html);
        Assert.Equal("DENY", Header(docs, "X-Frame-Options"));
        Assert.Equal("nosniff", Header(docs, "X-Content-Type-Options"));
        Assert.Equal("no-referrer", Header(docs, "Referrer-Policy"));
        Assert.Equal("nosniff", Header(json, "X-Content-Type-Options"));
        Assert.Null(Header(json, "Content-Security-Policy"));
    }

    private static string InlineHash(string html, string tag)
    {
        var content = Regex.Match(html, $"<{tag}>(.*?)</{tag}>", RegexOptions.Singleline).Groups[1].Value;
        return $"sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(content)))}";
    }

    private static HttpRequestMessage Preflight(string path, string origin)
    {
        var request = WithOrigin(HttpMethod.Options, path, origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type,last-event-id");
        return request;
    }

    private static HttpRequestMessage WithOrigin(HttpMethod method, string path, string origin)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Origin", origin);
        return request;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? string.Join(", ", values) : null;
}
