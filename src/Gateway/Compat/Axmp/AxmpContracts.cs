using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conversations.Gateway.Compat.Axmp;

/// <summary>
/// Body of <c>POST /conversations/{thread_id}/completion</c>: the seed's chat request (<c>prompt</c> is the user
/// message). <c>model</c> and <c>llm_model</c> (the library's own field name) both choose the model.
/// </summary>
/// <param name="Prompt">The user message. Required.</param>
/// <param name="Model">The model for this run; the agent's model when absent.</param>
/// <param name="LlmModel">Alias of <paramref name="Model"/>, as the library's <c>ChatRequest</c> names it.</param>
/// <param name="Temperature">Sampling temperature for this run, 0 to 2.</param>
/// <param name="MaxTokens">Output token limit per model call for this run.</param>
/// <param name="StreamMode">LangGraph's stream mode; accepted and recorded, the wire is the same for every mode.</param>
public sealed record AxmpCompletionRequest(
    [property: JsonPropertyName("prompt")] string? Prompt,
    [property: JsonPropertyName("model")] string? Model,
    [property: JsonPropertyName("llm_model")] string? LlmModel,
    [property: JsonPropertyName("temperature")] double? Temperature,
    [property: JsonPropertyName("max_tokens")] int? MaxTokens,
    [property: JsonPropertyName("stream_mode")] string? StreamMode);

/// <summary>Anthropic's error body: <c>{"type":"error","error":{"type":…,"message":…}}</c>, as a response and as the <c>error</c> event.</summary>
public sealed record AnthropicErrorBody([property: JsonPropertyName("error")] AnthropicError Error)
{
    [JsonPropertyName("type")]
    [JsonPropertyOrder(-1)]
    public string Type => "error";
}

/// <summary>The error inside <see cref="AnthropicErrorBody"/>.</summary>
/// <param name="Type"><c>invalid_request_error</c>, <c>not_found_error</c>, <c>api_error</c>, …</param>
/// <param name="Message">What went wrong; for bad input it starts with the field's name.</param>
public sealed record AnthropicError(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("message")] string Message);

/// <summary>The JSON of this dialect: snake_case, nulls written (Anthropic writes <c>stop_reason: null</c>), readable escaping.</summary>
internal static class AxmpJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
