using System.ClientModel;
using System.ClientModel.Primitives;
using Azure.Identity;
using OpenAI;
using OpenAI.Chat;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// The OpenAI SDK's <see cref="ChatClient"/> for an endpoint: OpenAI-compatible ones as the SDK does by default, Azure
/// OpenAI with its authentication and routes. <see cref="OpenAiChatModel"/> sees the same client type either way.
/// </summary>
/// <remarks>
/// Azure OpenAI goes through the OpenAI SDK rather than <c>Azure.AI.OpenAI</c>'s <c>AzureOpenAIClient</c>: that
/// package's only stable release (2.1.0) is built against OpenAI 2.1.0 and reaches into its internals, so with the
/// OpenAI 2.15 this project uses every chat call fails with <see cref="MissingMethodException"/>
/// (<c>ChatCompletionOptions.get_SerializedAdditionalRawData</c>). What it would add for chat completions — the
/// <c>api-key</c> header, an Entra ID token for the Cognitive Services scope, the deployment route and its
/// <c>api-version</c> — is built here from the SDK's own extension points.
/// </remarks>
internal static class ChatClientFactory
{
    /// <summary>The Entra ID scope of Azure OpenAI (Cognitive Services) tokens.</summary>
    public const string AzureTokenScope = "https://cognitiveservices.azure.com/.default";

    // One credential for the process: its token cache is then shared by every model (deployment) on the endpoint.
    private static readonly Lazy<DefaultAzureCredential> SharedAzureCredential = new(() => new DefaultAzureCredential());

    public static ChatClient Create(OpenAiModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clientOptions = new OpenAIClientOptions
        {
            NetworkTimeout = options.NetworkTimeout,
            RetryPolicy = new ClientRetryPolicy(options.MaxRetries),
        };
        if (options.Transport is not null)
        {
            clientOptions.Transport = options.Transport;
        }

        if (!options.IsAzure)
        {
            if (options.BaseUrl is not null)
            {
                clientOptions.Endpoint = options.BaseUrl;
            }

            // Endpoints without authentication still need a credential for the SDK; the placeholder is harmless there.
            return new ChatClient(options.Model, new ApiKeyCredential(options.ApiKey ?? "unused"), clientOptions);
        }

        var baseUrl = options.BaseUrl
            ?? throw new ArgumentException("Azure OpenAI needs BaseUrl: the resource URL (https://{resource}.openai.azure.com) or its v1 endpoint.", nameof(options));
        var useEntraId = string.IsNullOrEmpty(options.ApiKey);
        if (useEntraId && baseUrl.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"Azure OpenAI without an API key uses Entra ID, whose tokens are only sent over https; got '{baseUrl}'.", nameof(options));
        }

        var endpoint = AzureOpenAiEndpoint.Resolve(baseUrl, options.Model, options.AzureApiVersion);
        clientOptions.Endpoint = endpoint.ChatEndpoint;
        if (endpoint.ApiVersion is { } apiVersion)
        {
            clientOptions.AddPolicy(new AzureApiVersionPolicy(apiVersion), PipelinePosition.PerCall);
        }

        AuthenticationPolicy authentication = useEntraId
            ? new BearerTokenPolicy(options.AzureCredential ?? SharedAzureCredential.Value, AzureTokenScope)
            : ApiKeyAuthenticationPolicy.CreateHeaderApiKeyPolicy(new ApiKeyCredential(options.ApiKey!), "api-key");
        // OPENAI001: the SDK marks its AuthenticationPolicy constructor as evaluation-only; it is the SDK's way to
        // authenticate other than with a bearer key, and the Azure tests exercise it, so an SDK change shows there.
#pragma warning disable OPENAI001
        return new ChatClient(options.Model, authentication, clientOptions);
#pragma warning restore OPENAI001
    }
}
