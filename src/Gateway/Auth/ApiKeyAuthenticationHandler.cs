using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Auth;

/// <summary>
/// Authenticates an API key from <c>X-Api-Key</c>, <c>Authorization: Bearer ck_…</c> or (streams and WebSockets
/// only, see <see cref="Credentials"/>) <c>?access_token=</c>. The caller's owner id is <c>key:{id}</c>.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeys keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The claim that carries the key's id.</summary>
    public const string KeyIdClaim = "conversations:api_key";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Credentials.ApiKey(Request) is not { } key)
        {
            return AuthenticateResult.NoResult();
        }

        var record = await keys.VerifyAsync(key, Context.RequestAborted);
        if (record is null)
        {
            return AuthenticateResult.Fail(new AuthenticationFailureException("The API key is not valid: unknown, mistyped or revoked."));
        }

        var claims = new List<Claim>
        {
            new(Caller.OwnerClaim, $"key:{record.Id}"),
            new(KeyIdClaim, record.Id),
            new(ClaimTypes.Name, record.Name),
        };
        claims.AddRange(record.Roles.Select(role => new Claim(ClaimTypes.Role, role)));
        var identity = new ClaimsIdentity(claims, SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        await AuthProblems.UnauthorizedAsync(Context, result.Failure?.Message);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) => AuthProblems.ForbiddenAsync(Context);
}

/// <summary>Where a request carries its credential.</summary>
internal static class Credentials
{
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>The query parameter that carries a token where a client cannot set headers (browser EventSource, WebSocket).</summary>
    public const string QueryParameter = "access_token";

    /// <summary>The bearer credential: <c>Authorization: Bearer …</c>, else <c>?access_token=</c> on a stream or WebSocket request.</summary>
    public static string? Bearer(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim();
        }

        // Only where headers cannot be set: a URL with a token in it is logged by proxies, so never elsewhere.
        return AcceptsQueryToken(request) && request.Query[QueryParameter].ToString() is { Length: > 0 } token ? token : null;
    }

    /// <summary>The API key, when the request carries one (and not a JWT).</summary>
    public static string? ApiKey(HttpRequest request)
    {
        if (request.Headers[ApiKeyHeader].ToString() is { Length: > 0 } header)
        {
            return header.Trim();
        }

        return Bearer(request) is { } bearer && ApiKeys.LooksLikeKey(bearer) ? bearer : null;
    }

    private static bool AcceptsQueryToken(HttpRequest request) =>
        request.HttpContext.WebSockets.IsWebSocketRequest
        || (HttpMethods.IsGet(request.Method) && request.Path.Value?.EndsWith("/events", StringComparison.Ordinal) == true);
}
