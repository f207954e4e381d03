using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Fakes;

/// <summary>
/// A real HTTP service on loopback (Kestrel, a free port) for HTTP tools to call. It records every request and
/// answers by route:
/// <list type="bullet">
/// <item><c>GET /weather/{city}</c>: 200 JSON <c>{"city":…,"units":…,"echo":…}</c>, where <c>echo</c> is the
/// <c>Authorization</c> header it got (a careless service that echoes credentials);</item>
/// <item><c>POST /orders</c>: 201 JSON, the request body as it came;</item>
/// <item><c>POST /fail</c>: 500 with a text body; <c>GET /flaky</c>: 503 the first time, then 200 <c>recovered</c>;</item>
/// <item><c>GET</c> or <c>POST /slow</c>: never answers (until the client gives up); <c>GET /badjson</c>: 200
/// <c>application/json</c> that does not parse; <c>GET /text</c>: 200 <c>text/plain</c>; <c>GET /big</c>: 200 with
/// 100,000 characters.</item>
/// </list>
/// </summary>
public sealed class FakeHttpService : IAsyncDisposable
{
    public const int BigBodyLength = 100_000;

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _flakyCalls;
    private bool _disposed;

    private FakeHttpService(WebApplication app)
    {
        _app = app;
    }

    /// <summary><c>http://127.0.0.1:{port}</c>, without a trailing slash.</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<ReceivedRequest> Requests => [.. _requests];

    public static async Task<FakeHttpService> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        var service = new FakeHttpService(app);
        app.Use(async (context, next) =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            service._requests.Enqueue(new ReceivedRequest(
                context.Request.Method,
                // As sent, not decoded: what the tool escaped shows.
                context.Features.Get<IHttpRequestFeature>()?.RawTarget.Split('?')[0] ?? context.Request.Path.Value ?? "",
                context.Request.QueryString.Value ?? "",
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                body));
            await next(context);
        });
        app.MapGet("/weather/{city}", (string city, HttpContext context) => TypedResults.Json(new
        {
            city,
            units = context.Request.Query["units"].ToString(),
            echo = context.Request.Headers.Authorization.ToString(),
        }));
        app.MapPost("/orders", (HttpContext context) =>
            Results.Text(service.Requests[^1].Body, "application/json", Encoding.UTF8, StatusCodes.Status201Created));
        app.MapPost("/fail", () => Results.Text("upstream exploded: the database is down\nstack trace follows", "text/plain", Encoding.UTF8, StatusCodes.Status500InternalServerError));
        app.MapGet("/flaky", () => Interlocked.Increment(ref service._flakyCalls) == 1
            ? Results.Text("try again", "text/plain", Encoding.UTF8, StatusCodes.Status503ServiceUnavailable)
            : Results.Text("recovered", "text/plain"));
        app.MapMethods("/slow", ["GET", "POST"], async (HttpContext context) =>
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, service._stopping.Token);
            try
            {
                await Task.Delay(Timeout.Infinite, both.Token);
            }
            catch (OperationCanceledException)
            {
                // The client gave up, or the service is stopping.
            }
        });
        app.MapGet("/badjson", () => Results.Text("{\"temperature\": 21, \"sky\": ", "application/json"));
        app.MapGet("/text", () => Results.Text("plain words, not JSON", "text/plain"));
        app.MapGet("/big", () => Results.Text(new string('a', BigBodyLength - 3) + "END", "text/plain"));
        await app.StartAsync(cancellationToken);
        service.BaseUrl = app.Urls.First().TrimEnd('/');
        return service;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    /// <summary>A request as it arrived; <see cref="Path"/> is the raw target's path, still escaped.</summary>
    public sealed record ReceivedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, string Body);
}
