using Conversations.Bench.Client;
using Conversations.Bench.Targets;

namespace Conversations.Bench.Scenarios;

/// <summary>What every scenario works with: the processes of the run and the options.</summary>
public sealed class BenchContext(BenchOptions options, ChildProcess fake, Uri fakeUrl, ChildProcess proxy, Uri proxyUrl, ServerUnderTest server, StreamClient client)
{
    public BenchOptions Options => options;

    public ChildProcess Fake => fake;

    public Uri FakeUrl => fakeUrl;

    public ChildProcess Proxy => proxy;

    public Uri ProxyUrl => proxyUrl;

    public ServerUnderTest Server => server;

    public StreamClient Client => client;

    /// <summary>The base URL a path's requests go to.</summary>
    public Uri BaseUrl(StreamPath path) => path switch
    {
        StreamPath.Direct => fakeUrl,
        StreamPath.NaiveProxy => proxyUrl,
        _ => server.Gateway,
    };

    /// <summary>CPU seconds of the process(es) that relay on that path (direct: the fake model itself).</summary>
    public double RelayCpuSeconds(StreamPath path) => path switch
    {
        StreamPath.Direct => fake.CpuSeconds(),
        StreamPath.NaiveProxy => proxy.CpuSeconds(),
        _ => server.CpuSeconds(),
    };

    /// <summary>A thread for a native send, or null for the paths that need none.</summary>
    public async Task<string?> ThreadForAsync(StreamPath path, CancellationToken cancellationToken) =>
        path == StreamPath.Native ? await client.CreateThreadAsync(server.Gateway, cancellationToken) : null;

    public static string Name(StreamPath path) => path switch
    {
        StreamPath.Direct => "fake model direct",
        StreamPath.NaiveProxy => "naive proxy",
        StreamPath.Native => "native API",
        StreamPath.OpenAi => "/v1/chat/completions",
        _ => path.ToString(),
    };
}
