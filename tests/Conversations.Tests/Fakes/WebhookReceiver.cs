using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Fakes;

/// <summary>A real HTTP server on loopback that records every POST it gets and answers with the statuses it is given.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<int> _statuses;
    private readonly ConcurrentQueue<Received> _received = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private WebhookReceiver(WebApplication app, IEnumerable<int> statuses)
    {
        _app = app;
        _statuses = new ConcurrentQueue<int>(statuses);
    }

    /// <summary>Where to send: <c>http://127.0.0.1:port/hook</c>.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<Received> Requests => [.. _received];

    /// <summary>Starts a receiver answering with <paramref name="statuses"/> in turn, then 200 (or the last status when <paramref name="repeatLast"/>).</summary>
    public static async Task<WebhookReceiver> StartAsync(IEnumerable<int> statuses, bool repeatLast = false, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var list = statuses.ToList();
        var receiver = new WebhookReceiver(app, list);
        var last = repeatLast && list.Count > 0 ? list[^1] : 200;
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            receiver._received.Enqueue(new Received(body, context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
            receiver._arrived.Release();
            context.Response.StatusCode = receiver._statuses.TryDequeue(out var status) ? status : last;
        });
        await app.StartAsync(cancellationToken);
        receiver.Url = new Uri(app.Urls.First() + "/hook");
        return receiver;
    }

    /// <summary>Waits until <paramref name="count"/> requests have arrived.</summary>
    public async Task WaitForAsync(int count, CancellationToken cancellationToken)
    {
        while (_received.Count < count)
        {
            await _arrived.WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record Received(string Body, IReadOnlyDictionary<string, string> Headers);
}
