using System.ClientModel;
using System.ClientModel.Primitives;
using Azure.AI.OpenAI;
using Azure.Identity;
using OpenAI;
using OpenAI.Chat;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// The <see cref="ChatClient"/> for an endpoint: the OpenAI SDK's for OpenAI-compatible ones, <c>Azure.AI.OpenAI</c>'s
/// <see cref="AzureOpenAIClient"/> for Azure OpenAI. <see cref="OpenAiChatModel"/> sees a <see cref="ChatClient"/> either way.
/// </summary>
internal static class ChatClientFactory
{
    // One credential for the process: its token cache is then shared by every model (deployment) on the endpoint.
    private static readonly Lazy<DefaultAzureCredential> SharedAzureCredential = new(() => new DefaultAzureCredential());

    public static ChatClient Create(OpenAiModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.IsAzure)
        {
            return CreateAzure(options);
        }

        var clientOptions = new OpenAIClientOptions
        {
            NetworkTimeout = options.NetworkTimeout,
            RetryPolicy = new ClientRetryPolicy(options.MaxRetries),
        };
        if (options.Transport is not null)
        {
            clientOptions.Transport = options.Transport;
        }

        if (options.BaseUrl is not null)
        {
            clientOptions.Endpoint = options.BaseUrl;
        }

        // Endpoints without authentication still need a credential for the SDK; the placeholder is harmless there.
        return new ChatClient(options.Model, new ApiKeyCredential(options.ApiKey ?? "unused"), clientOptions);
    }

    private static ChatClient CreateAzure(OpenAiModelOptions options)
    {
        var baseUrl = options.BaseUrl
            ?? throw new ArgumentException("Azure OpenAI needs BaseUrl: the resource URL (https://{resource}.openai.azure.com) or its v1 endpoint.", nameof(options));
        var useEntraId = string.IsNullOrEmpty(options.ApiKey);
        if (useEntraId && baseUrl.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"Azure OpenAI without an API key uses Entra ID, whose tokens are only sent over https; got '{baseUrl}'.", nameof(options));
        }

        var clientOptions = new AzureOpenAIClientOptions(AzureOpenAiEndpoint.ServiceVersion(options.AzureApiVersion))
        {
            NetworkTimeout = options.NetworkTimeout,
            RetryPolicy = new ClientRetryPolicy(options.MaxRetries),
        };
        if (options.Transport is not null)
        {
            clientOptions.Transport = options.Transport;
        }

        var resource = AzureOpenAiEndpoint.ResourceUrl(baseUrl);
        var client = useEntraId
            ? new AzureOpenAIClient(resource, options.AzureCredential ?? SharedAzureCredential.Value, clientOptions)
            : new AzureOpenAIClient(resource, new ApiKeyCredential(options.ApiKey!), clientOptions);
        return client.GetChatClient(options.Model);
    }
}
