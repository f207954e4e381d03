using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Limits;

/// <summary>The gateway's limits on what one caller may send and hold (section <c>Limits</c>).</summary>
public sealed class GatewayLimitsOptions
{
    public const string SectionName = "Limits";

    /// <summary>The largest request body, in bytes (<c>Limits:MaxRequestBodyBytes</c>): 1 MiB.</summary>
    [Range(1024, 1L << 31)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// Refuses a request body over <see cref="GatewayLimitsOptions.MaxRequestBodyBytes"/> with <c>413</c>: at once when its
/// <c>Content-Length</c> says so; a body without one (chunked) is cut by the server's own body limit, set to the same
/// value here, whose error <see cref="Errors.BadRequestExceptionHandler"/> answers with the same ProblemDetails.
/// </summary>
public sealed class BodyLimitMiddleware(RequestDelegate next, IOptions<GatewayLimitsOptions> options, IProblemDetailsService problemDetails)
{
    public const string ConfigKey = "Limits:MaxRequestBodyBytes";

    private readonly long _limit = options.Value.MaxRequestBodyBytes;

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = _limit;
        }

        if (context.Request.ContentLength is { } length && length > _limit)
        {
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            // The body is not read: the connection is not reused for another request.
            context.Response.Headers.Connection = "close";
            await problemDetails.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails = TooLarge(_limit, length),
            });
            return;
        }

        await next(context);
    }

    /// <summary>The ProblemDetails of a body over the limit (its length when known).</summary>
    public static Microsoft.AspNetCore.Mvc.ProblemDetails TooLarge(long limit, long? length) => new()
    {
        Status = StatusCodes.Status413PayloadTooLarge,
        Title = "The request body is too large.",
        Detail = length is { } bytes
            ? $"The request body is {bytes} bytes; at most {limit} are allowed ({ConfigKey})."
            : $"The request body is over {limit} bytes, the most allowed ({ConfigKey}).",
        Extensions = { ["limit"] = ConfigKey, ["maximum"] = limit },
    };
}
