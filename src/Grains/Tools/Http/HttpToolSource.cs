using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Tools.Http;

/// <summary>The HTTP tools of configuration (<c>Tools:Http</c>), built once.</summary>
public sealed class HttpToolSource(IOptions<HttpToolsOptions> options, IHttpClientFactory clients, IConfiguration configuration) : IToolSource
{
    private readonly Lazy<IReadOnlyList<ITool>> _tools = new(() =>
        [.. options.Value.Tools.Select(spec => new HttpTool(spec, clients, configuration))]);

    public IReadOnlyList<ITool> Tools => _tools.Value;
}
