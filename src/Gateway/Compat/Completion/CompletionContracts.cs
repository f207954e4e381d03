using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conversations.Gateway.Compat.Completion;

/// <summary>Body of seed 001's <c>POST /completion</c>.</summary>
/// <param name="Message">The user message. Required.</param>
/// <param name="Model">The model for this run; the agent's model when absent.</param>
/// <param name="Agent">The agent to run; <c>default</c> when absent.</param>
/// <param name="Stream">True: SSE chunks. False (default): one <see cref="CompletionResponse"/>.</param>
/// <param name="Temperature">Sampling temperature for this run, 0 to 2.</param>
/// <param name="MaxTokens">Output token limit per model call for this run.</param>
/// <param name="ConversationHistory">The history of a new conversation (ignored when the conversation exists: it has its own).</param>
/// <param name="ConversationId">Continue this conversation, or create it with this id when new; a new id when absent.</param>
/// <param name="ProjectId">Accepted and echoed in the response metadata.</param>
/// <param name="Sources">Accepted and echoed in the response metadata.</param>
public sealed record CompletionRequest(
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("model")] string? Model,
    [property: JsonPropertyName("agent")] string? Agent,
    [property: JsonPropertyName("stream")] bool? Stream,
    [property: JsonPropertyName("temperature")] double? Temperature,
    [property: JsonPropertyName("max_tokens")] int? MaxTokens,
    [property: JsonPropertyName("conversation_history")] IReadOnlyList<HistoryMessage?>? ConversationHistory,
    [property: JsonPropertyName("conversation_id")] string? ConversationId,
    [property: JsonPropertyName("project_id")] JsonElement? ProjectId,
    [property: JsonPropertyName("sources")] JsonElement? Sources);

/// <summary>One message of <see cref="CompletionRequest.ConversationHistory"/>.</summary>
/// <param name="Role"><c>user</c>, <c>assistant</c> or <c>system</c>.</param>
/// <param name="Content">The message text.</param>
public sealed record HistoryMessage(
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("content")] string? Content);

/// <summary>The answer to a non-streaming completion: the run's text, who answered, and the run's metadata.</summary>
/// <param name="Content">The run's assistant text: every model turn's text, concatenated (what the stream's chunks add up to).</param>
/// <param name="Model">The model that answered.</param>
/// <param name="Agent">The agent that ran.</param>
/// <param name="ConversationId">The conversation, given or created.</param>
/// <param name="Metadata">Run id, finish reason, usage, tool calls, and the echoed project id and sources.</param>
public sealed record CompletionResponse(
    [property: JsonPropertyName("content")] string Content,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("agent")] string Agent,
    [property: JsonPropertyName("conversation_id")] string ConversationId,
    [property: JsonPropertyName("metadata")] CompletionMetadata Metadata);

/// <summary>
/// One SSE chunk: <c>{"content","done","metadata","conversation_id"}</c>; the failure chunk adds <c>error</c>.
/// </summary>
/// <param name="Content">A piece of assistant text; empty for chunks that only carry metadata.</param>
/// <param name="Done">True on the last chunk only.</param>
/// <param name="Metadata">What the chunk is (<see cref="CompletionMetadata.Type"/>) and its details.</param>
/// <param name="ConversationId">The conversation, on every chunk.</param>
/// <param name="Error">On the failure chunk: why the run failed.</param>
public sealed record StreamChunk(
    [property: JsonPropertyName("content")] string Content,
    [property: JsonPropertyName("done")] bool Done,
    [property: JsonPropertyName("metadata")] CompletionMetadata Metadata,
    [property: JsonPropertyName("conversation_id")] string ConversationId,
    [property: JsonPropertyName("error")] string? Error = null);

/// <summary>Metadata of a chunk or a response; absent fields are omitted.</summary>
public sealed record CompletionMetadata
{
    /// <summary>Chunks: <c>start</c>, <c>text</c>, <c>tool_call</c>, <c>done</c> or <c>error</c>. Absent on a non-streaming response.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; init; }

    [JsonPropertyName("run_id")]
    public string? RunId { get; init; }

    [JsonPropertyName("message_id")]
    public string? MessageId { get; init; }

    [JsonPropertyName("model")]
    public string? Model { get; init; }

    [JsonPropertyName("agent")]
    public string? Agent { get; init; }

    /// <summary>A <c>tool_call</c> chunk's call: started, then completed or failed.</summary>
    [JsonPropertyName("tool_call")]
    public CompletionToolCall? ToolCall { get; init; }

    /// <summary>Why the run stopped: <c>stop</c>, <c>length</c>, <c>content_filter</c> or <c>max_depth</c>.</summary>
    [JsonPropertyName("finish_reason")]
    public string? FinishReason { get; init; }

    [JsonPropertyName("usage")]
    public CompletionUsage? Usage { get; init; }

    /// <summary>Every tool call of the run with its result or error.</summary>
    [JsonPropertyName("tool_calls")]
    public IReadOnlyList<CompletionToolCall>? ToolCalls { get; init; }

    /// <summary>On the failure chunk: the error code (<c>model_error</c>, <c>model_unavailable</c>, …).</summary>
    [JsonPropertyName("code")]
    public string? Code { get; init; }

    [JsonPropertyName("project_id")]
    public JsonElement? ProjectId { get; init; }

    [JsonPropertyName("sources")]
    public JsonElement? Sources { get; init; }
}

/// <summary>A tool call as this dialect reports it.</summary>
/// <param name="Id">The call id.</param>
/// <param name="Name">The tool.</param>
/// <param name="Status"><c>started</c>, <c>completed</c> or <c>failed</c>.</param>
/// <param name="Arguments">The JSON arguments, once complete.</param>
/// <param name="Result">The tool's result.</param>
/// <param name="Error">Why the call failed.</param>
/// <param name="DurationMs">How long the tool ran.</param>
public sealed record CompletionToolCall(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("arguments")] string? Arguments = null,
    [property: JsonPropertyName("result")] string? Result = null,
    [property: JsonPropertyName("error")] string? Error = null,
    [property: JsonPropertyName("duration_ms")] long? DurationMs = null);

/// <summary>Tokens used by every model call of the run.</summary>
public sealed record CompletionUsage(
    [property: JsonPropertyName("prompt_tokens")] int PromptTokens,
    [property: JsonPropertyName("completion_tokens")] int CompletionTokens,
    [property: JsonPropertyName("total_tokens")] int TotalTokens);

/// <summary>Seed 001's error body, for every 4xx/5xx of this dialect: <c>error</c> and <c>detail</c> hold the same text.</summary>
public sealed record ErrorResponse(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("timestamp")] DateTime Timestamp);

/// <summary>The JSON of this dialect: snake_case (explicit names), nulls omitted, readable escaping.</summary>
internal static class CompletionJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
