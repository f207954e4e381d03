using System.ClientModel.Primitives;
using System.ComponentModel.DataAnnotations;
using System.Text;
using Azure.Core;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// How to reach an OpenAI-compatible chat completions endpoint (OpenAI, Azure OpenAI, Ollama, vLLM, …).
/// </summary>
/// <remarks>
/// <see cref="ToString"/> never prints <see cref="ApiKey"/>, so the options can be logged.
/// </remarks>
public sealed record OpenAiModelOptions
{
    /// <summary>The configuration section the options bind from.</summary>
    public const string SectionName = "OpenAi";

    /// <summary>
    /// The API key: sent as a bearer token, or on Azure OpenAI as the <c>api-key</c> header. Null for endpoints that need
    /// none (a placeholder is sent), and on Azure OpenAI for Entra ID (<see cref="AzureCredential"/>).
    /// </summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// The API root including the version segment, as <c>OPENAI_BASE_URL</c> spells it: <c>https://api.openai.com/v1</c>,
    /// <c>http://localhost:11434/v1</c>. Requests go to <c>{BaseUrl}/chat/completions</c>. Null for api.openai.com. On
    /// Azure OpenAI, the resource URL or its v1 endpoint (<see cref="AzureOpenAiEndpoint"/>).
    /// </summary>
    public Uri? BaseUrl { get; init; }

    /// <summary>
    /// The model name sent in requests and reported as <see cref="IChatModel.Name"/>; on Azure OpenAI, the deployment name.
    /// </summary>
    [Required]
    public string Model { get; init; } = "";

    /// <summary>How long one network operation (the response headers, then each read of the stream) may take.</summary>
    public TimeSpan NetworkTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>
    /// How often the SDK retries a request that failed before its response began (connection errors, 408, 429, 5xx),
    /// with exponential back-off. Zero to fail at once.
    /// </summary>
    [Range(0, 10)]
    public int MaxRetries { get; init; } = 2;

    /// <summary>False for an endpoint that can only answer whole.</summary>
    public bool SupportsStreaming { get; init; } = true;

    /// <summary>
    /// The kind of endpoint; null to decide by <see cref="BaseUrl"/>'s host (Azure OpenAI when it ends with
    /// <c>.openai.azure.com</c> or <c>.cognitiveservices.azure.com</c>, see <see cref="IsAzure"/>).
    /// </summary>
    public OpenAiProvider? Provider { get; init; }

    /// <summary>
    /// The <c>api-version</c> sent to Azure OpenAI: one that <c>Azure.AI.OpenAI</c>'s
    /// <c>AzureOpenAIClientOptions.ServiceVersion</c> knows (<c>2024-10-21</c>, <c>2025-04-01-preview</c>, …).
    /// </summary>
    public string AzureApiVersion { get; init; } = DefaultAzureApiVersion;

    /// <summary>
    /// The Entra ID token source for Azure OpenAI when <see cref="ApiKey"/> is null; null for one
    /// <c>DefaultAzureCredential</c> shared by the process (environment, workload identity, managed identity, Azure CLI, …).
    /// </summary>
    public TokenCredential? AzureCredential { get; init; }

    /// <summary>
    /// The HTTP transport under the SDK's pipeline; null for the SDK's own. Tests use it to reach a local server under an
    /// https address (Entra ID tokens are only ever sent over https).
    /// </summary>
    internal PipelineTransport? Transport { get; init; }

    /// <summary>The Azure OpenAI <c>api-version</c> used when none is configured (the newest GA one).</summary>
    public const string DefaultAzureApiVersion = "2024-10-21";

    /// <summary>True when requests go to Azure OpenAI: <see cref="Provider"/> says so, or, with none, the host does.</summary>
    public bool IsAzure => Provider switch
    {
        OpenAiProvider.Azure => true,
        OpenAiProvider.OpenAi => false,
        _ => BaseUrl is not null && AzureOpenAiEndpoint.IsAzureHost(BaseUrl),
    };

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("ApiKey = ").Append(ApiKey is null ? "null" : "***")
            .Append(", BaseUrl = ").Append(BaseUrl)
            .Append(", Model = ").Append(Model)
            .Append(", NetworkTimeout = ").Append(NetworkTimeout)
            .Append(", MaxRetries = ").Append(MaxRetries)
            .Append(", SupportsStreaming = ").Append(SupportsStreaming)
            .Append(", Provider = ").Append(Provider)
            .Append(", AzureApiVersion = ").Append(AzureApiVersion)
            .Append(", AzureCredential = ").Append(AzureCredential?.GetType().Name);
        return true;
    }
}
