using Conversations.Grains.Abstractions.Threads;
using Microsoft.AspNetCore.Diagnostics;

namespace Conversations.Gateway.Errors;

/// <summary>
/// A dependency that is down (the storage behind the silos, every silo) fails the request at once with 503 and
/// <c>Retry-After</c>, not with a 500 or a hang; nothing was half-written (grain writes are transactional).
/// </summary>
internal sealed class DependencyUnavailableHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var detail = Describe(exception);
        if (detail is null || httpContext.Response.HasStarted)
        {
            return false;
        }

        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = "2";
        return await problemDetails.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = { Status = StatusCodes.Status503ServiceUnavailable, Title = "Service unavailable", Detail = detail },
            Exception = exception,
        });
    }

    /// <summary>What a client is told, or null when the failure is not a dependency being down. Orleans wraps a
    /// storage failure during activation ("Error from storage provider …"), so the whole chain is looked at.</summary>
    private static string? Describe(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            if (Known(e) is { } detail)
            {
                return detail;
            }
        }

        return null;
    }

    private static string? Known(Exception exception) =>
        exception switch
        {
            StorageUnavailableException => "The storage is unavailable; retry in a moment.",
            SiloUnavailableException => "The node that runs this thread is unavailable; retry in a moment.",
            OrleansMessageRejectionException or Orleans.Runtime.Messaging.ConnectionFailedException => "No silo is available to run the thread.",
            TimeoutException => "The cluster did not answer in time; retry in a moment.",
            _ => null,
        };
}
