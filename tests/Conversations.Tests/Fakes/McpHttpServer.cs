using System.Collections.Concurrent;
using System.Net;
using Conversations.McpTestServer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Fakes;

/// <summary>
/// A real MCP server over streamable HTTP (ModelContextProtocol.AspNetCore on Kestrel, loopback) serving the test
/// server's <see cref="TestTools"/> at <c>/mcp</c>, recording the <c>Authorization</c> header of every request.
/// </summary>
public sealed class McpHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<string> _authorizations = new();

    private McpHttpServer(WebApplication app)
    {
        _app = app;
    }

    /// <summary>The MCP endpoint, <c>http://127.0.0.1:{port}/mcp</c>.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>The <c>Authorization</c> header of each request (empty when absent).</summary>
    public IReadOnlyList<string> Authorizations => [.. _authorizations];

    /// <summary>Starts a server on <paramref name="port"/> (0: a free one).</summary>
    public static async Task<McpHttpServer> StartAsync(int port = 0, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddMcpServer().WithHttpTransport().WithTools<TestTools>();
        var app = builder.Build();
        var server = new McpHttpServer(app);
        app.Use(async (context, next) =>
        {
            server._authorizations.Enqueue(context.Request.Headers.Authorization.ToString());
            await next(context);
        });
        app.MapMcp("/mcp");
        await app.StartAsync(cancellationToken);
        server.Url = new Uri(app.Urls.First().TrimEnd('/') + "/mcp");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
