using System.Net.Http.Headers;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Conversations.Tests.Gateway.Auth;

/// <summary>A gateway with authentication on (a JWT signing key and a bootstrap admin key), and tokens for it.</summary>
public static class AuthSettings
{
    public const string Issuer = "https://issuer.test";
    public const string Audience = "conversations-api";
    public const string SigningKey = "test-signing-key-of-at-least-32-bytes-0123456789";
    public const string AdminApiKey = "bootstrap-admin-key-0123456789-abcdefghijklmnop";

    public static Dictionary<string, string?> Settings(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Auth:Jwt:Issuer"] = Issuer,
            ["Auth:Jwt:Audience"] = Audience,
            ["Auth:Jwt:SigningKey"] = SigningKey,
            ["Auth:AdminApiKeys:0"] = AdminApiKey,
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>A gateway with authentication on, in the configured topology, on the demo model.</summary>
    public static GatewayApp App(IDictionary<string, string?>? more = null) => new(Settings(more));

    /// <summary>A signed JWT for <paramref name="subject"/>; the other parameters make it wrong in one way.</summary>
    public static string Token(
        string? subject, string[]? roles = null, string audience = Audience, string issuer = Issuer, string signingKey = SigningKey,
        DateTime? expires = null)
    {
        var claims = new Dictionary<string, object>();
        if (subject is not null)
        {
            claims["sub"] = subject;
        }

        if (roles is not null)
        {
            claims["roles"] = roles;
        }

        var now = DateTime.UtcNow;
        var notBefore = expires is { } end && end < now ? end.AddHours(-1) : now.AddMinutes(-1);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = claims,
            NotBefore = notBefore,
            IssuedAt = notBefore,
            Expires = expires ?? now.AddHours(1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(signingKey)), SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>A client of <paramref name="app"/> that sends <c>Authorization: Bearer {credential}</c> (a JWT or an API key).</summary>
    public static HttpClient ClientWith(this GatewayApp app, string? credential)
    {
        _ = app.Client; // starts the server
        var client = app.CreateClient();
        client.Timeout = Timeout.InfiniteTimeSpan;
        if (credential is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        return client;
    }

    /// <summary>A client that sends the bootstrap admin key in <c>X-Api-Key</c>.</summary>
    public static HttpClient AdminKeyClient(this GatewayApp app)
    {
        var client = app.ClientWith(null);
        client.DefaultRequestHeaders.Add("X-Api-Key", AdminApiKey);
        return client;
    }
}
