using Microsoft.AspNetCore.Cors.Infrastructure;

namespace Conversations.Gateway.Security;

/// <summary>
/// Cross-origin access (section <c>Cors</c>): none unless <see cref="AllowedOrigins"/> names origins; then those
/// origins may call every endpoint with the headers SSE and authentication need.
/// </summary>
public sealed class CorsSettings
{
    public const string SectionName = "Cors";

    /// <summary>Origins (<c>https://app.example.com</c>) allowed to call the API from a browser; none by default.</summary>
    public string[]? AllowedOrigins { get; set; }

    /// <summary>How long a browser may cache a preflight answer (default 10 minutes).</summary>
    public TimeSpan PreflightMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>True when any origin is allowed.</summary>
    public bool Enabled => AllowedOrigins?.Any(o => !string.IsNullOrWhiteSpace(o)) == true;

    /// <summary>The request headers a browser may send: bodies, credentials, resumption, the dialects' thread headers.</summary>
    public static readonly string[] AllowedHeaders =
        ["Authorization", "Content-Type", "Last-Event-ID", "X-Api-Key", "If-Match", "If-None-Match", "X-Thread-Id", "X-Stream-Status", "lb-thread-id"];

    /// <summary>The response headers a browser script may read: where things are and which thread answered. Nothing secret.</summary>
    public static readonly string[] ExposedHeaders = ["Location", "ETag", "X-Thread-Id", "lb-thread-id"];

    internal void Apply(CorsOptions options)
    {
        if (!Enabled)
        {
            return;
        }

        options.AddDefaultPolicy(policy => policy
            .WithOrigins([.. AllowedOrigins!.Where(o => !string.IsNullOrWhiteSpace(o)).Select(o => o.Trim().TrimEnd('/'))])
            .WithMethods("GET", "POST", "PUT", "PATCH", "DELETE")
            .WithHeaders(AllowedHeaders)
            .WithExposedHeaders(ExposedHeaders)
            .SetPreflightMaxAge(PreflightMaxAge));
    }
}
