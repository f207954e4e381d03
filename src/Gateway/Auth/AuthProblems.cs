namespace Conversations.Gateway.Auth;

/// <summary>The 401 and 403 answers, as ProblemDetails: what was wrong and what to send, never a credential.</summary>
internal static class AuthProblems
{
    /// <summary>The <c>WWW-Authenticate</c> challenge: bearer tokens (a JWT or an API key) for this realm.</summary>
    public const string Realm = "conversations";

    public static Task UnauthorizedAsync(HttpContext context, string? failure, string? error = null)
    {
        var challenge = $"Bearer realm=\"{Realm}\"";
        if (failure is not null)
        {
            challenge += $", error=\"{error ?? "invalid_token"}\", error_description=\"{failure.Replace('"', '\'')}\"";
        }

        return WriteAsync(
            context,
            StatusCodes.Status401Unauthorized,
            failure is null ? "Authentication required" : "Authentication failed",
            failure ?? "Send a JWT or an API key: 'Authorization: Bearer <token>', or the API key in 'X-Api-Key'.",
            challenge);
    }

    public static Task ForbiddenAsync(HttpContext context) =>
        WriteAsync(
            context,
            StatusCodes.Status403Forbidden,
            "Forbidden",
            $"This needs the '{Caller.AdminRole}' role, which these credentials do not have.",
            challenge: null);

    private static async Task WriteAsync(HttpContext context, int status, string title, string detail, string? challenge)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = status;
        if (challenge is not null)
        {
            context.Response.Headers.WWWAuthenticate = challenge;
        }

        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }
}
