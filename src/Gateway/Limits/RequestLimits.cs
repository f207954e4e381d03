using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Limits;

/// <summary>
/// Limits on a request's URL and headers (section <c>RequestLimits</c>). Kestrel refuses a request over its own limits
/// with an empty 414 or 431 that it writes itself, before any middleware runs; so Kestrel's limits are set to twice
/// these, and <see cref="RequestLimitsMiddleware"/> enforces these with a ProblemDetails that says which limit and by how
/// much. Only a request over twice the limit still gets Kestrel's empty answer.
/// </summary>
public sealed class RequestLimitsOptions
{
    public const string SectionName = "RequestLimits";

    /// <summary>The longest request target (path and query, as sent), in bytes: 8 KiB, Kestrel's own default line limit.</summary>
    [Range(1024, 1024 * 1024)]
    public int MaxRequestTargetLength { get; set; } = 8 * 1024;

    /// <summary>The most bytes of header names and values together: 32 KiB, Kestrel's own default.</summary>
    [Range(4 * 1024, 4 * 1024 * 1024)]
    public int MaxRequestHeadersTotalSize { get; set; } = 32 * 1024;

    /// <summary>The most header fields: 100, Kestrel's own default.</summary>
    [Range(10, 10_000)]
    public int MaxRequestHeaderCount { get; set; } = 100;
}

/// <summary>Answers 414 and 431 with ProblemDetails for requests over <see cref="RequestLimitsOptions"/>.</summary>
public sealed class RequestLimitsMiddleware(RequestDelegate next, IOptions<RequestLimitsOptions> options, IProblemDetailsService problemDetails)
{
    private readonly RequestLimitsOptions _limits = options.Value;

    public async Task InvokeAsync(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? $"{context.Request.PathBase}{context.Request.Path}{context.Request.QueryString}";
        if (target.Length > _limits.MaxRequestTargetLength)
        {
            await RefuseAsync(
                context,
                StatusCodes.Status414UriTooLong,
                "The request URL is too long.",
                $"The request target (path and query) is {target.Length} bytes; at most {_limits.MaxRequestTargetLength} are allowed.",
                _limits.MaxRequestTargetLength);
            return;
        }

        var count = 0;
        var total = 0;
        var largest = (Name: string.Empty, Size: 0);
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                count++;
                var size = name.Length + (value?.Length ?? 0);
                total += size;
                if (size > largest.Size)
                {
                    largest = (name, size);
                }
            }
        }

        if (count > _limits.MaxRequestHeaderCount)
        {
            await RefuseAsync(
                context,
                StatusCodes.Status431RequestHeaderFieldsTooLarge,
                "Too many request headers.",
                $"The request has {count} header fields; at most {_limits.MaxRequestHeaderCount} are allowed.",
                _limits.MaxRequestHeaderCount);
            return;
        }

        if (total > _limits.MaxRequestHeadersTotalSize)
        {
            await RefuseAsync(
                context,
                StatusCodes.Status431RequestHeaderFieldsTooLarge,
                "The request headers are too large.",
                $"The request headers are {total} bytes in all (the largest, '{largest.Name}', {largest.Size}); at most {_limits.MaxRequestHeadersTotalSize} are allowed.",
                _limits.MaxRequestHeadersTotalSize);
            return;
        }

        await next(context);
    }

    private async Task RefuseAsync(HttpContext context, int status, string title, string detail, int limit)
    {
        context.Response.StatusCode = status;
        // The rest of the request is not read: the connection is not reused for another.
        context.Response.Headers.Connection = "close";
        await problemDetails.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Title = title, Detail = detail, Extensions = { ["limit"] = limit } },
        });
    }
}

public static class RequestLimitsExtensions
{
    /// <summary>Registers the limits and sets Kestrel's own limits to twice them (see <see cref="RequestLimitsOptions"/>).</summary>
    public static IServiceCollection AddRequestLimits(this IServiceCollection services)
    {
        services.AddOptions<RequestLimitsOptions>()
            .BindConfiguration(RequestLimitsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<SubscriberLimitsOptions>()
            .BindConfiguration(GatewayLimitsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<SubscriberLimits>();
        services.AddOptions<GatewayLimitsOptions>()
            .BindConfiguration(GatewayLimitsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<RequestLimitsOptions>>((kestrel, limits) =>
        {
            var value = limits.Value;
            // The request line also holds the method and the HTTP version.
            kestrel.Limits.MaxRequestLineSize = (2 * value.MaxRequestTargetLength) + 64;
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * value.MaxRequestHeadersTotalSize;
            kestrel.Limits.MaxRequestHeaderCount = 2 * value.MaxRequestHeaderCount;
        });
        return services;
    }

    /// <summary>Refuses requests over the limits with ProblemDetails; first in the pipeline.</summary>
    public static IApplicationBuilder UseRequestLimits(this IApplicationBuilder app) =>
        app.UseMiddleware<RequestLimitsMiddleware>().UseMiddleware<BodyLimitMiddleware>();
}
