using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Auth;

/// <summary>
/// A server without authentication (no <c>Auth</c> settings) serves only on loopback: once the server has bound its
/// addresses, and before any request is served, this checks them. On loopback it logs a warning that the server is
/// open; on any other address it stops the start, naming the address and <c>Auth</c>, unless
/// <see cref="AuthOptions.AllowOpen"/>. Requests that arrive before the check get 503.
/// </summary>
public sealed class OpenModeGuard(IServer server, IOptions<AuthOptions> options, ILogger<OpenModeGuard> logger) : IHostedLifecycleService
{
    private volatile bool _passed;

    /// <summary>True once requests may be served.</summary>
    public bool Passed => _passed;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var auth = options.Value;
        if (auth.Enabled)
        {
            Log.AuthenticationOn(logger, auth.JwtEnabled ? (string.IsNullOrWhiteSpace(auth.Jwt.Authority) ? "JWT (signing key)" : "JWT (authority)") : "no JWT", auth.AdminApiKeys?.Count(k => !string.IsNullOrWhiteSpace(k)) ?? 0);
            _passed = true;
            return Task.CompletedTask;
        }

        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var exposed = addresses.Where(a => !IsLoopback(a)).ToList();
        if (exposed.Count > 0 && !auth.AllowOpen)
        {
            throw new InvalidOperationException(
                $"Authentication is off (no Auth:Jwt or Auth:AdminApiKeys settings) and the server listens on {string.Join(", ", exposed)}, which is not loopback. "
                + "Configure Auth (Auth:Jwt:SigningKey with Auth:Jwt:Issuer and Auth:Jwt:Audience, Auth:Jwt:Authority, or Auth:AdminApiKeys), "
                + "listen on 127.0.0.1, [::1] or localhost only, or set Auth:AllowOpen=true to serve every caller as an admin.");
        }

        if (exposed.Count > 0)
        {
            Log.OpenServerExposed(logger, string.Join(", ", exposed));
        }
        else
        {
            Log.OpenServer(logger, string.Join(", ", addresses));
        }

        _passed = true;
        return Task.CompletedTask;
    }

    /// <summary>The answer to a request that came before the check.</summary>
    public Task RefuseAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        return Task.CompletedTask;
    }

    /// <summary>True for an address on 127.0.0.0/8, ::1 or <c>localhost</c>.</summary>
    public static bool IsLoopback(string address)
    {
        // http://127.0.0.1:5000, http://[::1]:5000, http://localhost:5000; http://+:80 and http://*:80 are every address.
        if (!Uri.TryCreate(address.Replace("://+", "://any-address", StringComparison.Ordinal).Replace("://*", "://any-address", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            return false;
        }

        return string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
