using Conversations.Silo.Cluster.Client;
using Conversations.Silo.Hosting;
using Microsoft.AspNetCore.Diagnostics;
using Npgsql;

namespace Conversations.Gateway.Errors;

/// <summary>
/// A dependency that is down (PostgreSQL, every silo) fails the request at once with 503 and <c>Retry-After</c>,
/// not with a 500 or a hang; nothing was half-written (grain writes are transactional).
/// </summary>
internal sealed class DependencyUnavailableHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var detail = exception switch
        {
            DependencyUnavailableException unavailable => unavailable.Message,
            NoSiloAvailableException => "No silo is available to run the thread.",
            ThreadNodeUnavailableException => "The node that runs this thread is unavailable; retry in a moment.",
            SiloCallException { StatusCode: System.Net.HttpStatusCode.ServiceUnavailable } => "The cluster database is unavailable.",
            NpgsqlException or TimeoutException => "The cluster database is unavailable.",
            _ => null,
        };
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
}
