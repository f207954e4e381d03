using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Auth;

/// <summary>
/// Whether a caller may see and touch a thread: its owner, or an admin (every caller of an open server is one, and is
/// answered without a grain call). Anyone else is answered as if the thread did not exist (each dialect's 404), so a
/// thread's existence is not told to who may not see it.
/// </summary>
public sealed class ThreadAccess(IGrainFactory grains)
{
    /// <summary>The thread when it exists and <paramref name="caller"/> may see it; null otherwise.</summary>
    public async Task<ThreadSnapshot?> FindAsync(Caller caller, string threadId, CancellationToken cancellationToken)
    {
        var thread = await grains.GetGrain<IThreadGrain>(threadId).GetAsync(cancellationToken);
        return thread is not null && caller.MayAccess(thread) ? thread : null;
    }

    /// <summary>
    /// False when the thread exists and belongs to someone else; true when <paramref name="caller"/> may touch it or
    /// there is no such thread (the endpoint answers that, or creates it for the caller).
    /// </summary>
    public async ValueTask<bool> MayTouchAsync(Caller caller, string threadId, CancellationToken cancellationToken)
    {
        if (caller.IsAdmin)
        {
            return true;
        }

        var thread = await grains.GetGrain<IThreadGrain>(threadId).GetAsync(cancellationToken);
        return thread is null || caller.MayAccess(thread);
    }
}

/// <summary>The endpoint filter that applies <see cref="ThreadAccess"/> to every route with a thread id in its path.</summary>
public static class ThreadAccessFilter
{
    /// <summary>
    /// On the endpoints of <paramref name="builder"/> whose route has <paramref name="routeValue"/>, answers
    /// <paramref name="notFound"/> (the dialect's 404) for a thread that belongs to someone else, before the handler runs.
    /// </summary>
    public static TBuilder RequireThreadAccess<TBuilder>(this TBuilder builder, Func<string, IResult> notFound, string routeValue = "threadId")
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (http.Request.RouteValues[routeValue] is string threadId
                && !await http.RequestServices.GetRequiredService<ThreadAccess>().MayTouchAsync(Caller.Of(http), threadId, http.RequestAborted))
            {
                return notFound(threadId);
            }

            return await next(context);
        });
}
