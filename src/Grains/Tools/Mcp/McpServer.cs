using System.Text;
using System.Text.Json;
using Conversations.Grains.Tools.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Conversations.Grains.Tools.Mcp;

/// <summary>
/// The silo's connection to one MCP server, through the official client (<c>ModelContextProtocol</c>): it connects,
/// lists the server's tools and calls them. It connects again when the session has ended (the process exited, the
/// HTTP session was lost): at the next call, or in the background at the next listing of tools once
/// <see cref="McpServerSpec.RetryInterval"/> has passed since a failed attempt. A server never reached offers no
/// tools; one that was reached keeps the tools it listed while it is away, and their calls fail saying so.
/// </summary>
public sealed class McpServer : IAsyncDisposable
{
    /// <summary>The named client streamable HTTP servers are reached with (no resilience handler: MCP sessions hold long streams).</summary>
    public const string HttpClientName = "Conversations.Tools.Mcp";

    private readonly McpServerSpec _spec;
    private readonly IConfiguration _configuration;
    private readonly IHttpClientFactory _clients;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly SecretRedactor _redactor = new();
    private readonly CancellationTokenSource _disposing = new();
    private McpClient? _client;
    private IReadOnlyList<ITool> _tools = [];
    private long _nextAttemptTicks = DateTimeOffset.MinValue.UtcTicks;
    private int _reconnecting;

    public McpServer(McpServerSpec spec, IConfiguration configuration, IHttpClientFactory clients, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _spec = spec;
        _configuration = configuration;
        _clients = clients;
        // The MCP client logs whole protocol messages (at Trace): what it logs is scrubbed of this server's secrets.
        _loggerFactory = new RedactingLoggerFactory(loggerFactory, _redactor);
        _logger = loggerFactory.CreateLogger<McpServer>();
        _time = time;
    }

    public string Name => _spec.Name;

    /// <summary>The tools the server listed last, named for the model; starts a reconnection in the background when one is due.</summary>
    public IReadOnlyList<ITool> Tools
    {
        get
        {
            ReconnectInBackgroundWhenDue();
            return Volatile.Read(ref _tools);
        }
    }

    private bool IsConnected => _client is { } client && !client.Completion.IsCompleted;

    /// <summary>Connects when not connected and lists the tools; false (logged) when the server cannot be reached.</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            await EnsureConnectedAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ToolException)
        {
            return false; // logged where it failed
        }
    }

    /// <summary>Calls the server's tool <paramref name="toolName"/> (its own name, without the prefix) and returns the text of its result.</summary>
    public async Task<string> CallAsync(string toolName, JsonElement arguments, int maxChars, CancellationToken cancellationToken)
    {
        var client = await EnsureConnectedAsync(cancellationToken).ConfigureAwait(false);
        CallToolResult result;
        try
        {
            result = await client.CallToolAsync(
                new CallToolRequestParams
                {
                    Name = toolName,
                    Arguments = arguments.ValueKind == JsonValueKind.Object
                        ? arguments.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal)
                        : null,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (McpProtocolException ex)
        {
            // A JSON-RPC error from the server (an unknown tool, invalid parameters): the session is fine.
            throw new ToolException($"The MCP server '{_spec.Name}' refused the call: {_redactor.Redact(ex.Message)}", ex);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OperationCanceledException)
        {
            // The session broke during the call: whether the tool ran is unknown, so the call is not repeated; the next
            // one starts a new session.
            Log.McpServerLost(_logger, _spec.Name, _redactor.Redact(ex.Message));
            await ForgetAsync(client).ConfigureAwait(false);
            throw new ToolException($"The MCP server '{_spec.Name}' closed the connection during the call: {_redactor.Redact(ex.Message)}", ex);
        }

        var text = _redactor.Redact(ResultText(result));
        if (result.IsError == true)
        {
            throw new ToolException(ToolText.Limit(text.Length == 0 ? "the tool reported an error without a message" : text, maxChars));
        }

        return ToolText.Limit(text, maxChars);
    }

    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_client is not null)
            {
                await DisposeQuietlyAsync(_client).ConfigureAwait(false);
                _client = null;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Drops <paramref name="client"/> if it is still the current session, so the next use connects anew.</summary>
    private async Task ForgetAsync(McpClient client)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (ReferenceEquals(_client, client))
            {
                _client = null;
                await DisposeQuietlyAsync(client).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private void ReconnectInBackgroundWhenDue()
    {
        if (IsConnected || _disposing.IsCancellationRequested || _time.GetUtcNow().UtcTicks < Interlocked.Read(ref _nextAttemptTicks)
            || Interlocked.CompareExchange(ref _reconnecting, 1, 0) != 0)
        {
            return;
        }

        // Off whatever scheduler asked (a grain's): the listing goes on without waiting for the server.
        _ = Task.Run(async () =>
        {
            try
            {
                await RefreshAsync(_disposing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The silo is stopping.
            }
            finally
            {
                Volatile.Write(ref _reconnecting, 0);
            }
        });
    }

    private async Task<McpClient> EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_client is { } current && !current.Completion.IsCompleted)
        {
            return current;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        await _gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            if (_client is { } again && !again.Completion.IsCompleted)
            {
                return again;
            }

            if (_client is not null)
            {
                Log.McpServerReconnecting(_logger, _spec.Name);
                await DisposeQuietlyAsync(_client).ConfigureAwait(false);
                _client = null;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(linked.Token);
            timeout.CancelAfter(_spec.ConnectTimeout);
            McpClient? client = null;
            try
            {
                client = await McpClient.CreateAsync(
                    CreateTransport(),
                    new McpClientOptions
                    {
                        ClientInfo = new Implementation { Name = "conversations", Version = "1.0" },
                        InitializationTimeout = _spec.ConnectTimeout,
                    },
                    _loggerFactory,
                    timeout.Token).ConfigureAwait(false);
                var listed = await client.ListToolsAsync(cancellationToken: timeout.Token).ConfigureAwait(false);
                Volatile.Write(ref _tools, ToModelTools(listed));
                _client = client;
                Log.McpServerConnected(_logger, _spec.Name, _spec.Endpoint, _tools.Count, string.Join(", ", _tools.Select(t => t.Definition.Name)));
                return client;
            }
            catch (Exception ex) when (!linked.IsCancellationRequested || ex is not OperationCanceledException)
            {
                if (client is not null)
                {
                    await DisposeQuietlyAsync(client).ConfigureAwait(false);
                }

                Interlocked.Exchange(ref _nextAttemptTicks, (_time.GetUtcNow() + _spec.RetryInterval).UtcTicks);
                var reason = ex is OperationCanceledException
                    ? $"no answer within {_spec.ConnectTimeout.TotalSeconds:0.###} s"
                    : _redactor.Redact(ex.Message);
                Log.McpServerUnavailable(_logger, _spec.Name, _spec.Endpoint, reason);
                throw new ToolException($"The MCP server '{_spec.Name}' is unavailable: {reason}", ex);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private IClientTransport CreateTransport()
    {
        if (_spec.IsStdio)
        {
            return new StdioClientTransport(
                new StdioClientTransportOptions
                {
                    Name = _spec.Name,
                    Command = _spec.Command!,
                    Arguments = [.. _spec.Args],
                    WorkingDirectory = _spec.WorkingDirectory,
                    EnvironmentVariables = _spec.Env.ToDictionary(e => e.Key, e => (string?)SecretReferences.Resolve(e.Value, _configuration, _redactor), StringComparer.Ordinal),
                    ShutdownTimeout = TimeSpan.FromSeconds(2),
                    StandardErrorLines = line => Log.McpServerStandardError(_logger, _spec.Name, _redactor.Redact(line)),
                },
                _loggerFactory);
        }

        var headers = _spec.Headers.ToDictionary(h => h.Key, h => SecretReferences.Resolve(h.Value, _configuration, _redactor), StringComparer.OrdinalIgnoreCase);
        return new HttpClientTransport(
            new HttpClientTransportOptions
            {
                Name = _spec.Name,
                Endpoint = _spec.Url!,
                AdditionalHeaders = headers,
                TransportMode = HttpTransportMode.AutoDetect,
                ConnectionTimeout = _spec.ConnectTimeout,
            },
            _clients.CreateClient(HttpClientName),
            _loggerFactory,
            ownsHttpClient: true);
    }

    /// <summary>The server's tools under the names the model sees: prefixed, characters OpenAI does not accept replaced by '_', at most 64.</summary>
    private List<ITool> ToModelTools(IList<McpClientTool> listed)
    {
        var tools = new List<ITool>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tool in listed)
        {
            var name = ModelName(_spec.ToolPrefix + tool.Name);
            if (!names.Add(name))
            {
                Log.McpToolNameTaken(_logger, _spec.Name, tool.Name, name);
                continue;
            }

            var description = string.IsNullOrWhiteSpace(tool.Description) ? tool.Title ?? tool.Name : tool.Description;
            tools.Add(new McpTool(this, tool.Name, new ToolDefinition(name, description, tool.JsonSchema.Clone()), _spec.MaxResultChars));
        }

        return tools;
    }

    internal static string ModelName(string name)
    {
        var text = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            text.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_');
        }

        return text.Length <= 64 ? text.ToString() : text.ToString(0, 64);
    }

    private static string ResultText(CallToolResult result)
    {
        var parts = new List<string>();
        foreach (var block in result.Content ?? [])
        {
            parts.Add(block switch
            {
                TextContentBlock text => text.Text,
                EmbeddedResourceBlock { Resource: TextResourceContents resource } => resource.Text,
                EmbeddedResourceBlock embedded => $"[resource {embedded.Resource.Uri} ({embedded.Resource.MimeType ?? "binary"}), not shown]",
                ImageContentBlock image => $"[image ({image.MimeType}), not shown]",
                AudioContentBlock audio => $"[audio ({audio.MimeType}), not shown]",
                ResourceLinkBlock link => $"[resource link: {link.Uri}]",
                _ => $"[{block.Type} content, not shown]",
            });
        }

        if (parts.Count == 0 && result.StructuredContent is { } structured)
        {
            parts.Add(JsonSerializer.Serialize(structured));
        }

        return string.Join("\n", parts);
    }

    private async Task DisposeQuietlyAsync(McpClient client)
    {
        try
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.McpServerNotClosed(_logger, _spec.Name, _redactor.Redact(ex.Message));
        }
    }
}

/// <summary>One tool of an MCP server, as the agent loop calls it.</summary>
public sealed class McpTool(McpServer server, string serverToolName, ToolDefinition definition, int maxResultChars) : ITool
{
    public ToolDefinition Definition { get; } = definition;

    /// <summary>The server that has the tool.</summary>
    public string ServerName => server.Name;

    /// <summary>The tool's name on its server (without the prefix).</summary>
    public string ServerToolName => serverToolName;

    public async ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default) =>
        await server.CallAsync(serverToolName, arguments, maxResultChars, cancellationToken).ConfigureAwait(false);
}
