using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Conversations.Gateway.Telemetry;
using Microsoft.AspNetCore.Http.Features;

namespace Conversations.Gateway.Streaming;

/// <summary>
/// An SSE response: items framed by <see cref="SseFormatter"/> (so multi-line data never breaks the framing),
/// <c>Cache-Control: no-cache</c>, <c>X-Accel-Buffering: no</c>, headers flushed at once, and a heartbeat comment
/// whenever the stream has been silent for the heartbeat interval since its last write (an event or a heartbeat), so
/// no silence is longer than the interval. (<see cref="SseFormatter"/> writes items only; the heartbeat is an SSE comment
/// line, which clients ignore.)
/// </summary>
public sealed class ServerSentEventsStream(IAsyncEnumerable<SseItem<string>> items, TimeSpan heartbeatInterval) : IResult
{
    /// <summary>
    /// The service key of the clock the heartbeats follow, when one is registered under it (tests move it by hand);
    /// otherwise the process's <see cref="TimeProvider"/>.
    /// </summary>
    public const string ClockKey = "sse-heartbeat";

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
            var time = httpContext.RequestServices.GetKeyedService<TimeProvider>(ClockKey)
                ?? httpContext.RequestServices.GetService<TimeProvider>()
                ?? TimeProvider.System;
            var metrics = httpContext.RequestServices.GetService<GatewayMetrics>();
            var format = GatewayMetrics.FormatOf(httpContext.Request);
            await SseFormatter.WriteAsync(WithHeartbeats(items, response.Body, time, () => metrics?.Relayed(format), cancellationToken), response.Body, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away; the run it watched goes on.
        }
        catch (SubscriberOverflowException overflow)
        {
            // The client read too slowly and its bounded buffer filled: the stream is cut (not ended cleanly, so the
            // client cannot take it for a finished one) and the client resumes with Last-Event-ID.
            var logger = httpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<ServerSentEventsStream>();
            Log.SubscriberCut(logger, overflow.ThreadId, overflow.LastSequence);
            httpContext.Abort();
        }
    }

    private async IAsyncEnumerable<SseItem<string>> WithHeartbeats(
        IAsyncEnumerable<SseItem<string>> source, Stream body, TimeProvider time, Action relayed, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var enumerator = source.GetAsyncEnumerator(stop.Token);
        Task<bool>? next = null;
        try
        {
            // The silence is measured from the last write of any kind, event or heartbeat: one timer at a time, which
            // wakes when the interval since the last write may have passed and sleeps again for the rest otherwise.
            var lastWrite = time.GetUtcNow();
            var heartbeat = Task.Delay(heartbeatInterval, time, stop.Token);
            next = enumerator.MoveNextAsync().AsTask();
            while (true)
            {
                if (await Task.WhenAny(next, heartbeat) == heartbeat)
                {
                    await heartbeat;
                    var silent = time.GetUtcNow() - lastWrite;
                    silent = silent < TimeSpan.Zero ? TimeSpan.Zero : silent;
                    if (silent >= heartbeatInterval)
                    {
                        // Between items: SseFormatter is waiting for the next one, so nothing else is writing.
                        await body.WriteAsync(Heartbeat, cancellationToken);
                        await body.FlushAsync(cancellationToken);
                        lastWrite = time.GetUtcNow();
                        silent = TimeSpan.Zero;
                    }

                    heartbeat = Task.Delay(heartbeatInterval - silent, time, stop.Token);
                    continue;
                }

                if (!await next)
                {
                    yield break;
                }

                // SseFormatter writes the item before it asks for the next one: the item's write ends here.
                relayed();
                yield return enumerator.Current;
                lastWrite = time.GetUtcNow();
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
