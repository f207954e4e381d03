using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Threading.RateLimiting;
using Conversations.Gateway.Auth;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Limits;

/// <summary>
/// The per-caller rate limit (section <c>RateLimits</c>): a token bucket per caller — the authenticated user or API
/// key, else the remote IP address — on every endpoint but health. On by default only when authentication is on
/// (<see cref="Enabled"/>): an open server listens on loopback only, where every caller shares one address.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "RateLimits";

    /// <summary>On or off; null (the default) for on exactly when authentication is configured.</summary>
    public bool? Enabled { get; set; }

    /// <summary>The bucket's size: how many requests a caller may make at once (<c>RateLimits:PermitLimit</c>).</summary>
    [Range(1, 1_000_000)]
    public int PermitLimit { get; set; } = 100;

    /// <summary>How often the bucket is refilled by <see cref="PermitLimit"/> tokens (<c>RateLimits:Period</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many requests over the limit wait for a token instead of being refused (<c>RateLimits:QueueLimit</c>).</summary>
    [Range(0, 10_000)]
    public int QueueLimit { get; set; }
}

public static class RateLimitsExtensions
{
    public static IServiceCollection AddRateLimits(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>()
            .BindConfiguration(RateLimitOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitOptions>>((o, settings) =>
        {
            var value = settings.Value;
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                context.Request.Path.StartsWithSegments("/health")
                    ? RateLimitPartition.GetNoLimiter("health")
                    : RateLimitPartition.GetTokenBucketLimiter(PartitionOf(context), _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = value.PermitLimit,
                        TokensPerPeriod = value.PermitLimit,
                        ReplenishmentPeriod = value.Period,
                        QueueLimit = value.QueueLimit,
                        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                        AutoReplenishment = true,
                    }));
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = (rejected, cancellationToken) => RefuseAsync(rejected, value, cancellationToken);
        });
        return services;
    }

    /// <summary>Whether the limiter runs: <see cref="RateLimitOptions.Enabled"/>, else whether authentication is on.</summary>
    public static bool RateLimitsEnabled(this IServiceProvider services) =>
        services.GetRequiredService<IOptions<RateLimitOptions>>().Value.Enabled
        ?? services.GetRequiredService<IOptions<AuthOptions>>().Value.Enabled;

    /// <summary>The caller a request counts for: its user or key, else its remote address.</summary>
    public static string PartitionOf(HttpContext context) =>
        context.User.Identity?.IsAuthenticated == true && Caller.Of(context).Owner is { } owner
            ? $"caller:{owner}"
            : $"ip:{context.Connection.RemoteIpAddress}";

    private static async ValueTask RefuseAsync(OnRejectedContext rejected, RateLimitOptions settings, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : settings.Period;
        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails =
            {
                Status = StatusCodes.Status429TooManyRequests,
                Title = "Too many requests.",
                Detail = string.Create(
                    CultureInfo.InvariantCulture,
                    $"This caller may make {settings.PermitLimit} requests per {settings.Period} (RateLimits:PermitLimit, RateLimits:Period); retry after {seconds} s."),
                Extensions = { ["limit"] = "RateLimits:PermitLimit", ["maximum"] = settings.PermitLimit, ["retryAfterSeconds"] = seconds },
            },
        });
    }
}
