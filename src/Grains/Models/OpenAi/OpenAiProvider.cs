namespace Conversations.Grains.Models.OpenAi;

/// <summary>Which kind of chat completions endpoint <see cref="OpenAiModelOptions.BaseUrl"/> is.</summary>
public enum OpenAiProvider
{
    /// <summary>OpenAI or any OpenAI-compatible endpoint: <c>Authorization: Bearer {key}</c>, <c>{BaseUrl}/chat/completions</c>.</summary>
    OpenAi,

    /// <summary>
    /// Azure OpenAI, through <c>Azure.AI.OpenAI</c>'s <c>AzureOpenAIClient</c>: the <c>api-key</c> header (or an Entra
    /// ID token when no key is given), and the deployment routes (see <see cref="AzureOpenAiEndpoint"/>).
    /// </summary>
    Azure,
}
