namespace Conversations.Gateway.Security;

/// <summary>
/// Headers that keep browsers safe with our answers: <c>X-Content-Type-Options: nosniff</c> on every response; on
/// HTML pages also a <c>Content-Security-Policy</c> (<see cref="DefaultPolicy"/> unless the page set its own),
/// <c>X-Frame-Options: DENY</c> and <c>Referrer-Policy: no-referrer</c>.
/// </summary>
public static class SecurityHeaders
{
    /// <summary>The policy of a page that sets none: its own origin only, no inline code, never in a frame.</summary>
    public const string DefaultPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) =>
        app.Use((context, next) =>
        {
            context.Response.OnStarting(static state =>
            {
                var response = ((HttpContext)state).Response;
                var headers = response.Headers;
                headers.XContentTypeOptions = "nosniff";
                if (response.ContentType?.StartsWith("text/html", StringComparison.OrdinalIgnoreCase) == true)
                {
                    if (string.IsNullOrEmpty(headers.ContentSecurityPolicy))
                    {
                        headers.ContentSecurityPolicy = DefaultPolicy;
                    }

                    headers.XFrameOptions = "DENY";
                    headers["Referrer-Policy"] = "no-referrer";
                }

                return Task.CompletedTask;
            }, context);
            return next(context);
        });
}
