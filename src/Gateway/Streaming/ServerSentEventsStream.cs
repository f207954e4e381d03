using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Features;

namespace Conversations.Gateway.Streaming;

/// <summary>
/// An SSE response: items framed by <see cref="SseFormatter"/> (so multi-line data never breaks the framing),
/// <c>Cache-Control: no-cache</c>, <c>X-Accel-Buffering: no</c>, headers flushed at once, and a heartbeat comment
/// whenever the stream has been idle for the heartbeat interval. (<see cref="SseFormatter"/> writes items only;
/// the heartbeat is an SSE comment line, which clients ignore.)
/// </summary>
public sealed class ServerSentEventsStream(IAsyncEnumerable<SseItem<string>> items, TimeSpan heartbeatInterval) : IResult
{
    private static readonly byte[] Heartbeat = ": heartbeat\n\n"u8.ToArray();

    /// <summary>Extra response headers (the Langbase dialect's <c>lb-thread-id</c>, …).</summary>
    public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        foreach (var (name, value) in Headers)
        {
            response.Headers[name] = value;
        }

        httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var cancellationToken = httpContext.RequestAborted;
        try
        {
            // Headers go out now, so a client knows the stream is open before the first event.
            await response.StartAsync(cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
            await SseFormatter.WriteAsync(WithHeartbeats(items, response.Body, cancellationToken), response.Body, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away; the run it watched goes on.
        }
    }

    private async IAsyncEnumerable<SseItem<string>> WithHeartbeats(
        IAsyncEnumerable<SseItem<string>> source, Stream body, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var enumerator = source.GetAsyncEnumerator(stop.Token);
        Task<bool>? next = null;
        try
        {
            var heartbeat = Task.Delay(heartbeatInterval, stop.Token);
            var wroteSinceHeartbeat = false;
            next = enumerator.MoveNextAsync().AsTask();
            while (true)
            {
                if (await Task.WhenAny(next, heartbeat) == heartbeat)
                {
                    await heartbeat;
                    if (!wroteSinceHeartbeat)
                    {
                        // Between items: SseFormatter is waiting for the next one, so nothing else is writing.
                        await body.WriteAsync(Heartbeat, cancellationToken);
                        await body.FlushAsync(cancellationToken);
                    }

                    wroteSinceHeartbeat = false;
                    heartbeat = Task.Delay(heartbeatInterval, stop.Token);
                    continue;
                }

                if (!await next)
                {
                    yield break;
                }

                wroteSinceHeartbeat = true;
                yield return enumerator.Current;
                next = enumerator.MoveNextAsync().AsTask();
            }
        }
        finally
        {
            await stop.CancelAsync();
            if (next is not null)
            {
                try
                {
                    await next;
                }
                catch (Exception)
                {
                    // The source ends by cancellation or by its own failure; either way this response is over.
                }
            }

            await enumerator.DisposeAsync();
        }
    }
}
