using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.OpenAi;

/// <summary>
/// OpenAI's wire JSON: snake_case names, nulls written where OpenAI writes them (<c>logprobs: null</c>,
/// <c>finish_reason: null</c>) and left out where it leaves them out (marked per property).
/// </summary>
public static class OpenAiJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>Body of <c>POST /v1/chat/completions</c>: OpenAI's fields we use, and our extensions.</summary>
/// <remarks>Client-declared <c>tools</c>/<c>tool_choice</c>/<c>user</c> are read and ignored: the agent's own tools run on the server.</remarks>
public sealed record ChatCompletionRequest
{
    public string? Model { get; init; }
    public List<ChatMessageInput?>? Messages { get; init; }
    public bool? Stream { get; init; }
    public ChatStreamOptions? StreamOptions { get; init; }
    public double? Temperature { get; init; }
    public int? MaxTokens { get; init; }
    public int? MaxCompletionTokens { get; init; }
    public JsonElement? Tools { get; init; }
    public JsonElement? ToolChoice { get; init; }
    public string? User { get; init; }

    /// <summary>Extension: the thread to continue (also the <c>X-Thread-Id</c> header).</summary>
    public string? ThreadId { get; init; }

    /// <summary>Extension: the agent to run.</summary>
    public string? Agent { get; init; }

    /// <summary>Extension (seed 004): add <c>agent.status</c> chunks to the stream (also the <c>X-Stream-Status</c> header).</summary>
    public bool? StreamStatus { get; init; }
}

/// <summary><c>stream_options</c>.</summary>
public sealed record ChatStreamOptions(bool? IncludeUsage);

/// <summary>One message of a request: <c>content</c> is a string, null, or an array of <c>{type:"text", text}</c> parts.</summary>
public sealed record ChatMessageInput(string? Role, JsonElement? Content, string? Name, string? ToolCallId, JsonElement? ToolCalls);

/// <summary>A <c>chat.completion.chunk</c>, its properties in OpenAI's order.</summary>
public sealed record ChatCompletionChunk
{
    public required string Id { get; init; }
    public string Object => "chat.completion.chunk";
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required string SystemFingerprint { get; init; }
    public required IReadOnlyList<ChunkChoice> Choices { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Usage? Usage { get; init; }

    /// <summary>Seed 004's <c>thread_id</c>; left out by dialects that do not carry it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ThreadId { get; init; }
}

/// <summary><c>choices[i]</c> of a chunk.</summary>
public sealed record ChunkChoice
{
    public int Index { get; init; }
    public required ChunkDelta Delta { get; init; }
    public object? Logprobs => null;
    public string? FinishReason { get; init; }
}

/// <summary>A chunk's <c>delta</c>: only the fields it carries are written.</summary>
public sealed record ChunkDelta
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Role { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Content { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ToolCallChunk>? ToolCalls { get; init; }

    /// <summary>Seed 004's status payload: <c>{"status": "…", …details}</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, object?>? Metadata { get; init; }
}

/// <summary>A piece of a tool call: the first carries id, type and name (arguments ""); later ones only index and arguments.</summary>
public sealed record ToolCallChunk
{
    public required int Index { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Type => Id is null ? null : "function";

    public required FunctionChunk Function { get; init; }
}

/// <summary>A piece of a call's function.</summary>
public sealed record FunctionChunk
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    public required string Arguments { get; init; }
}

/// <summary>A <c>chat.completion</c> (the non-streaming answer), its properties in OpenAI's order.</summary>
public sealed record ChatCompletion
{
    public required string Id { get; init; }
    public string Object => "chat.completion";
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required string SystemFingerprint { get; init; }
    public required IReadOnlyList<CompletionChoice> Choices { get; init; }
    public required Usage Usage { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ThreadId { get; init; }
}

/// <summary><c>choices[i]</c> of a completion.</summary>
public sealed record CompletionChoice
{
    public int Index { get; init; }
    public required CompletionMessage Message { get; init; }
    public object? Logprobs => null;
    public required string FinishReason { get; init; }
}

/// <summary>The assistant message of a completion.</summary>
public sealed record CompletionMessage
{
    public string Role => "assistant";
    public string? Content { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<CompletionToolCall>? ToolCalls { get; init; }

    public object? Refusal => null;
}

/// <summary>A whole tool call of a completion.</summary>
public sealed record CompletionToolCall
{
    public required string Id { get; init; }
    public string Type => "function";
    public required CompletionFunction Function { get; init; }
}

/// <summary>A tool call's function with its whole arguments.</summary>
public sealed record CompletionFunction(string Name, string Arguments);

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed record OpenAiErrorResponse(OpenAiError Error);

/// <summary>The error inside <see cref="OpenAiErrorResponse"/>.</summary>
public sealed record OpenAiError(string Message, string Type, string? Param, string? Code);

/// <summary><c>GET /v1/models</c>.</summary>
public sealed record ModelList(IReadOnlyList<ModelInfo> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

/// <summary>A model as OpenAI lists it.</summary>
public sealed record ModelInfo(string Id, long Created, string OwnedBy)
{
    [JsonPropertyOrder(-1)]
    public string Id { get; init; } = Id;

    public string Object => "model";
    public long Created { get; init; } = Created;
    public string OwnedBy { get; init; } = OwnedBy;
}
