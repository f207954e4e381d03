using System.ComponentModel.DataAnnotations;
using System.Text;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// How to reach an OpenAI-compatible chat completions endpoint (OpenAI, Azure OpenAI v1, Ollama, vLLM, …).
/// </summary>
/// <remarks>
/// <see cref="ToString"/> never prints <see cref="ApiKey"/>, so the options can be logged.
/// </remarks>
public sealed record OpenAiModelOptions
{
    /// <summary>The configuration section the options bind from.</summary>
    public const string SectionName = "OpenAi";

    /// <summary>The API key sent as a bearer token; null for endpoints that need none (a placeholder is sent).</summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// The API root including the version segment, as <c>OPENAI_BASE_URL</c> spells it: <c>https://api.openai.com/v1</c>,
    /// <c>http://localhost:11434/v1</c>. Requests go to <c>{BaseUrl}/chat/completions</c>. Null for api.openai.com.
    /// </summary>
    public Uri? BaseUrl { get; init; }

    /// <summary>The model name sent in requests and reported as <see cref="IChatModel.Name"/>.</summary>
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

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("ApiKey = ").Append(ApiKey is null ? "null" : "***")
            .Append(", BaseUrl = ").Append(BaseUrl)
            .Append(", Model = ").Append(Model)
            .Append(", NetworkTimeout = ").Append(NetworkTimeout)
            .Append(", MaxRetries = ").Append(MaxRetries)
            .Append(", SupportsStreaming = ").Append(SupportsStreaming);
        return true;
    }
}
