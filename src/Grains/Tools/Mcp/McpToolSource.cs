using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Tools.Mcp;

/// <summary>
/// The tools of every MCP server of configuration (<c>Tools:Mcp</c>). At silo start it connects to each server and
/// lists its tools, all at once, each bounded by its <see cref="McpServerSpec.ConnectTimeout"/>; a server that is down
/// does not stop the silo: it is logged, offers no tools, and is tried again later (see <see cref="McpServer"/>).
/// At stop it closes the sessions (stdio servers' processes end).
/// </summary>
public sealed class McpToolSource : IToolSource, IHostedService, IAsyncDisposable
{
    private readonly IReadOnlyList<McpServer> _servers;
    private readonly ILogger<McpToolSource> _logger;
    private readonly HashSet<string> _reportedClashes = new(StringComparer.Ordinal);

    public McpToolSource(
        IOptions<McpServersOptions> options,
        IConfiguration configuration,
        IHttpClientFactory clients,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        _servers = [.. options.Value.Servers.Select(spec => new McpServer(spec, configuration, clients, loggerFactory, time))];
        _logger = loggerFactory.CreateLogger<McpToolSource>();
    }

    public IReadOnlyList<McpServer> Servers => _servers;

    public IReadOnlyList<ITool> Tools
    {
        get
        {
            if (_servers.Count == 0)
            {
                return [];
            }

            // Two servers' tools under one name: the first server's wins (give one a ToolPrefix of its own).
            var tools = new Dictionary<string, ITool>(StringComparer.Ordinal);
            foreach (var server in _servers)
            {
                foreach (var tool in server.Tools)
                {
                    if (!tools.TryAdd(tool.Definition.Name, tool))
                    {
                        ReportClash(tool.Definition.Name, server.Name);
                    }
                }
            }

            return [.. tools.Values];
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_servers.Select(server => server.RefreshAsync(cancellationToken)));

    public Task StopAsync(CancellationToken cancellationToken) => DisposeAsync().AsTask();

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void ReportClash(string name, string server)
    {
        lock (_reportedClashes)
        {
            if (!_reportedClashes.Add(name + "\n" + server))
            {
                return;
            }
        }

        Log.McpToolNameTaken(_logger, server, name, name);
    }
}
