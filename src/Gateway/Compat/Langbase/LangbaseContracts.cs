using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Gateway.Compat.OpenAi;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.Langbase;

/// <summary>Body of <c>POST /v1/pipes/run</c>. Langbase names <c>threadId</c> in camelCase; message fields are snake_case.</summary>
public sealed record PipeRunRequest
{
    public List<LangbaseMessageInput?>? Messages { get; init; }
    public bool? Stream { get; init; }

    /// <summary>An object <c>{"name": "value"}</c> or Langbase's array <c>[{"name", "value"}]</c>; substituted for <c>{{name}}</c>.</summary>
    public JsonElement? Variables { get; init; }

    [JsonPropertyName("threadId")]
    public string? ThreadId { get; init; }

    /// <summary>The pipe's name: here, the agent to run (the default agent when absent).</summary>
    public string? Name { get; init; }
}

/// <summary>A message as Langbase takes it.</summary>
public sealed record LangbaseMessageInput(string? Role, JsonElement? Content, string? Name, string? ToolCallId, JsonElement? ToolCalls);

/// <summary>Body of <c>POST /v1/threads</c>.</summary>
public sealed record LangbaseCreateThreadRequest
{
    [JsonPropertyName("threadId")]
    public string? ThreadId { get; init; }

    public Dictionary<string, string>? Metadata { get; init; }
    public List<LangbaseMessageInput?>? Messages { get; init; }
}

/// <summary>Body of <c>POST /v1/threads/{threadId}/messages</c>.</summary>
public sealed record LangbaseAppendRequest(List<LangbaseMessageInput?>? Messages);

/// <summary>Langbase's thread object.</summary>
public sealed record LangbaseThread(string Id, long CreatedAt, IReadOnlyDictionary<string, string> Metadata)
{
    [JsonPropertyOrder(-1)]
    public string Id { get; init; } = Id;

    public string Object => "thread";
    public long CreatedAt { get; init; } = CreatedAt;
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = Metadata;
}

/// <summary>Langbase's thread message (<c>ThreadMessagesBaseResponse</c>).</summary>
public sealed record LangbaseMessage
{
    public required string Id { get; init; }
    public required string ThreadId { get; init; }
    public required long CreatedAt { get; init; }
    public required string Role { get; init; }
    public string? Content { get; init; }
    public string? ToolCallId { get; init; }
    public IReadOnlyList<CompletionToolCall> ToolCalls { get; init; } = [];
    public string? Name { get; init; }
    public IReadOnlyList<object> Attachments { get; init; } = [];
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public static LangbaseMessage From(string threadId, ThreadMessage message) => new()
    {
        Id = message.Id,
        ThreadId = threadId,
        CreatedAt = message.CreatedAt.ToUnixTimeSeconds(),
        Role = message.Role,
        Content = message.Content,
        ToolCallId = message.ToolCallId,
        ToolCalls = [.. (message.ToolCalls ?? []).Select(c => new CompletionToolCall { Id = c.Id, Function = new CompletionFunction(c.Name, c.Arguments) })],
        Name = message.Name,
    };
}

/// <summary>
/// The non-streaming answer of <c>POST /v1/pipes/run</c>: Langbase's <c>completion</c>, <c>threadId</c> and <c>raw</c>
/// (the chat.completion), with the chat.completion's fields also at the top level as the seed's server returns them.
/// </summary>
public sealed record PipeRunResponse
{
    public required string Completion { get; init; }

    [JsonPropertyName("threadId")]
    public required string ThreadId { get; init; }

    public required string Id { get; init; }
    public string Object => "chat.completion";
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required IReadOnlyList<CompletionChoice> Choices { get; init; }
    public required Usage Usage { get; init; }
    public required string SystemFingerprint { get; init; }
    public required ChatCompletion Raw { get; init; }
}

/// <summary><c>GET /</c>: the server is up.</summary>
public sealed record ServerStatus(string Status, string Message, DateTimeOffset Timestamp);
