using Azure.AI.OpenAI;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// The Azure OpenAI resource behind a configured base URL, and the service version for an <c>api-version</c>.
/// <c>AzureOpenAIClient</c> sends chat completions to
/// <c>{resource}/openai/deployments/{deployment}/chat/completions?api-version=…</c>, so both styles of base URL name
/// the resource: the resource URL itself (<c>https://{resource}.openai.azure.com</c>, optionally with <c>/openai</c>,
/// or a gateway's prefix in front of it), and the v1 endpoint (<c>https://{resource}.openai.azure.com/openai/v1</c>).
/// </summary>
public static class AzureOpenAiEndpoint
{
    private static readonly string[] AzureHostSuffixes = [".openai.azure.com", ".cognitiveservices.azure.com"];

    /// <summary>True for the hosts of Azure OpenAI resources.</summary>
    public static bool IsAzureHost(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return AzureHostSuffixes.Any(suffix => url.Host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The resource URL that <paramref name="baseUrl"/> (resource URL or v1 endpoint) names.</summary>
    public static Uri ResourceUrl(Uri baseUrl)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var path = baseUrl.AbsolutePath.TrimEnd('/');
        foreach (var suffix in new[] { "/openai/v1", "/openai" })
        {
            if (path.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                path = path[..^suffix.Length];
                break;
            }
        }

        return new UriBuilder(baseUrl) { Path = path + "/", Query = string.Empty, Fragment = string.Empty }.Uri;
    }

    /// <summary>The service version for an <c>api-version</c> such as <c>2024-10-21</c> or <c>2025-04-01-preview</c>.</summary>
    public static AzureOpenAIClientOptions.ServiceVersion ServiceVersion(string apiVersion)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(apiVersion);
        var name = "V" + apiVersion.Trim().Replace("-preview", "-Preview", StringComparison.OrdinalIgnoreCase).Replace('-', '_');
        return Enum.TryParse<AzureOpenAIClientOptions.ServiceVersion>(name, ignoreCase: false, out var version) && Enum.IsDefined(version)
            ? version
            : throw new ArgumentException(
                $"Azure OpenAI api-version '{apiVersion}' is not one that Azure.AI.OpenAI knows: " +
                string.Join(", ", Enum.GetNames<AzureOpenAIClientOptions.ServiceVersion>().Select(known => known[1..].Replace('_', '-').ToLowerInvariant())) + ".",
                nameof(apiVersion));
    }
}
