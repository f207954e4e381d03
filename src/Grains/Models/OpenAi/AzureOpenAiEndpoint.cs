using System.ClientModel.Primitives;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// Where an Azure OpenAI chat completions request goes, from the configured base URL and deployment (model) name. Two
/// styles of base URL work:
/// <list type="bullet">
/// <item>the v1 endpoint, a path ending in <c>/v1</c> (<c>https://{resource}.openai.azure.com/openai/v1</c>): requests
/// go to <c>{BaseUrl}/chat/completions</c> with the deployment as <c>model</c>, and no <c>api-version</c>;</item>
/// <item>the resource URL (<c>https://{resource}.openai.azure.com</c>, optionally with <c>/openai</c>, or a gateway's
/// prefix in front of it): requests go to
/// <c>{resource}/openai/deployments/{deployment}/chat/completions?api-version={AzureApiVersion}</c>.</item>
/// </list>
/// </summary>
/// <param name="ChatEndpoint">The endpoint given to the OpenAI SDK, which appends <c>/chat/completions</c>.</param>
/// <param name="ApiVersion">The <c>api-version</c> query parameter every request carries; null for the v1 endpoint.</param>
public sealed record AzureOpenAiEndpoint(Uri ChatEndpoint, string? ApiVersion)
{
    private static readonly string[] AzureHostSuffixes = [".openai.azure.com", ".cognitiveservices.azure.com"];

    /// <summary>True for the hosts of Azure OpenAI resources.</summary>
    public static bool IsAzureHost(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return AzureHostSuffixes.Any(suffix => url.Host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The endpoint for <paramref name="deployment"/> on the resource or v1 endpoint <paramref name="baseUrl"/>.</summary>
    public static AzureOpenAiEndpoint Resolve(Uri baseUrl, string deployment, string apiVersion)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        ArgumentException.ThrowIfNullOrWhiteSpace(deployment);
        ArgumentException.ThrowIfNullOrWhiteSpace(apiVersion);

        var path = baseUrl.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v1", StringComparison.OrdinalIgnoreCase))
        {
            return new AzureOpenAiEndpoint(baseUrl, null);
        }

        if (path.EndsWith("/openai", StringComparison.OrdinalIgnoreCase))
        {
            path = path[..^"/openai".Length];
        }

        var endpoint = new UriBuilder(baseUrl)
        {
            Path = $"{path}/openai/deployments/{Uri.EscapeDataString(deployment)}",
            Query = string.Empty,
            Fragment = string.Empty,
        };
        return new AzureOpenAiEndpoint(endpoint.Uri, apiVersion);
    }
}

/// <summary>Adds <c>api-version={version}</c> to every request that has none (Azure OpenAI's deployment routes need it).</summary>
internal sealed class AzureApiVersionPolicy(string apiVersion) : PipelinePolicy
{
    private readonly string _parameter = "api-version=" + Uri.EscapeDataString(apiVersion);

    public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
    {
        AddVersion(message);
        ProcessNext(message, pipeline, currentIndex);
    }

    public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
    {
        AddVersion(message);
        return ProcessNextAsync(message, pipeline, currentIndex);
    }

    private void AddVersion(PipelineMessage message)
    {
        if (message.Request.Uri is not { } uri || uri.Query.Contains("api-version=", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var query = uri.Query.TrimStart('?');
        message.Request.Uri = new UriBuilder(uri) { Query = query.Length == 0 ? _parameter : $"{query}&{_parameter}" }.Uri;
    }
}
