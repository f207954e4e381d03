using System.Net.Http.Headers;
using System.Net.Sockets;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// The one HTTP client a gateway uses for silos' internal endpoints: a <see cref="SocketsHttpHandler"/> with pooled
/// connections recycled every few minutes (silos come and go, addresses get reused), a connect timeout, and TCP
/// keep-alive so a long event stream from a machine that vanished fails within seconds instead of hanging.
/// Every request carries the cluster key. Thread-safe; meant to be a singleton.
/// </summary>
public sealed class SiloHttpClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _clusterKey;

    public SiloHttpClient(ClusterClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ClusterKey, "ClusterKey");
        _clusterKey = options.ClusterKey;
        Options = options;
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = options.ConnectTimeout,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            ConnectCallback = ConnectWithKeepAliveAsync,
        };
        // Calls are bounded by CallTimeout per request; event streams last as long as the activation.
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The settings this client was made with.</summary>
    public ClusterClientOptions Options { get; }

    /// <summary>Sends a request to <paramref name="address"/> + <paramref name="relativePath"/> with the cluster key.</summary>
    internal async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, string address, string relativePath, HttpContent? content, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(ClusterProtocol.BaseUri(address), relativePath)) { Content = content };
        request.Headers.Add(ClusterProtocol.ClusterKeyHeader, _clusterKey);
        if (method == HttpMethod.Get)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        }

        return await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _http.Dispose();

    private static async ValueTask<Stream> ConnectWithKeepAliveAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 5);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 2);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
