using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>Body of seed 003's <c>POST /chat/stream</c> and <c>POST /chat</c>, and the <c>data</c> of a WebSocket <c>chat</c> message.</summary>
/// <param name="Message">The user message.</param>
/// <param name="ResetHistory">True: forget the agent's conversation and start a new one with this message.</param>
/// <param name="ParallelTools">False: the run's tool calls run one at a time. True or absent: up to the agent's <c>max_parallel_tools</c>.</param>
/// <param name="Agent">The agent to talk to; <c>default</c> when absent.</param>
/// <param name="ThreadId">Continue this thread (created when new) instead of the agent's conversation.</param>
public sealed record ChatRequest(
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("reset_history")] bool? ResetHistory,
    [property: JsonPropertyName("parallel_tools")] bool? ParallelTools,
    [property: JsonPropertyName("agent")] string? Agent,
    [property: JsonPropertyName("thread_id")] string? ThreadId);

/// <summary>
/// One event of seed 003's stream: the JSON of an SSE <c>data:</c> line, and (except for tool calls) the <c>data</c> of a
/// WebSocket message. Fields that do not apply to the <see cref="EventType"/> are left out.
/// </summary>
public sealed record ChatStreamEvent
{
    /// <summary><see cref="ChatEventTypes"/>.</summary>
    [JsonPropertyName("event_type")]
    public required string EventType { get; init; }

    /// <summary><c>chat_chunk</c>: a piece of the reply.</summary>
    [JsonPropertyName("content")]
    public string? Content { get; init; }

    /// <summary><c>tool_call_*</c>: the call, as far as it got.</summary>
    [JsonPropertyName("tool_call")]
    public ChatToolCall? ToolCall { get; init; }

    /// <summary><c>chat_complete</c>: every piece of text the run streamed, concatenated.</summary>
    [JsonPropertyName("final_response")]
    public string? FinalResponse { get; init; }

    /// <summary><c>chat_complete</c> and <c>error</c>: the tokens the run used.</summary>
    [JsonPropertyName("usage")]
    public ChatUsage? Usage { get; init; }

    /// <summary><c>chat_complete</c>: <c>stop</c>, <c>length</c> or <c>max_depth</c>.</summary>
    [JsonPropertyName("stop_reason")]
    public string? StopReason { get; init; }

    /// <summary><c>error</c>: what went wrong.</summary>
    [JsonPropertyName("error")]
    public string? Error { get; init; }

    /// <summary><c>error</c>: the same text as <see cref="Error"/>, for clients that read <c>message</c>.</summary>
    [JsonPropertyName("message")]
    public string? Message { get; init; }

    /// <summary><c>error</c>: a stable code (<c>model_error</c>, <c>model_unavailable</c>, <c>cancelled</c>, <c>run_active</c>, …).</summary>
    [JsonPropertyName("code")]
    public string? Code { get; init; }

    /// <summary>The agent that ran.</summary>
    [JsonPropertyName("agent")]
    public string? Agent { get; init; }

    /// <summary>The thread holding the conversation.</summary>
    [JsonPropertyName("thread_id")]
    public string? ThreadId { get; init; }

    /// <summary>The run.</summary>
    [JsonPropertyName("run_id")]
    public string? RunId { get; init; }

    /// <summary>When the event happened.</summary>
    [JsonPropertyName("timestamp")]
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>The native event's sequence number (the SSE <c>id:</c>); not part of the JSON.</summary>
    [JsonIgnore]
    public long Sequence { get; init; }

    /// <summary>True for <c>chat_complete</c> and <c>error</c>, the events that end a run.</summary>
    [JsonIgnore]
    public bool IsTerminal => EventType is ChatEventTypes.ChatComplete or ChatEventTypes.Error;
}

/// <summary>The <c>event_type</c> values of seed 003.</summary>
public static class ChatEventTypes
{
    public const string ChatChunk = "chat_chunk";
    public const string ToolCallStart = "tool_call_start";
    public const string ToolCallComplete = "tool_call_complete";
    public const string ToolCallError = "tool_call_error";
    public const string ChatComplete = "chat_complete";
    public const string Error = "error";
}

/// <summary>A tool call as seed 003 reports it.</summary>
/// <param name="Id">The call id.</param>
/// <param name="Name">The tool.</param>
/// <param name="Arguments">The arguments: a JSON object when the model sent valid JSON, else the raw text.</param>
/// <param name="Result">The tool's result (<c>complete</c>).</param>
/// <param name="Error">Why the call failed (<c>error</c>).</param>
/// <param name="DurationMs">How long the tool ran (<c>complete</c> and <c>error</c>).</param>
/// <param name="Status"><c>start</c>, <c>complete</c> or <c>error</c>: the suffix of the event's <c>tool_call_*</c> type.</param>
public sealed record ChatToolCall(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("arguments")] JsonElement? Arguments,
    [property: JsonPropertyName("result")] string? Result,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("duration_ms")] long? DurationMs,
    [property: JsonPropertyName("status")] string Status)
{
    /// <summary>The model's argument text as JSON: parsed when it is valid JSON, else a JSON string.</summary>
    public static JsonElement ParseArguments(string arguments)
    {
        try
        {
            using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(arguments) ? "{}" : arguments);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(arguments, StreamingChatJson.Options);
        }
    }
}

/// <summary>Token counts, snake_case as OpenAI reports them.</summary>
public sealed record ChatUsage(
    [property: JsonPropertyName("prompt_tokens")] int PromptTokens,
    [property: JsonPropertyName("completion_tokens")] int CompletionTokens,
    [property: JsonPropertyName("total_tokens")] int TotalTokens)
{
    public static ChatUsage? From(Usage? usage) => usage is null ? null : new(usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens);
}

/// <summary>Seed 003's <c>ChatResponse</c>: the answer of <c>POST /chat</c>.</summary>
/// <param name="Response">Every piece of text the run produced, concatenated (the same as <c>final_response</c>).</param>
/// <param name="ToolCalls">Every tool call of the run with its result or error.</param>
/// <param name="Agent">The agent that answered.</param>
/// <param name="ThreadId">The thread holding the conversation.</param>
/// <param name="RunId">The run.</param>
/// <param name="Usage">Tokens used by the run's model calls.</param>
/// <param name="StopReason"><c>stop</c>, <c>length</c> or <c>max_depth</c>.</param>
/// <param name="Timestamp">When the run completed.</param>
public sealed record ChatResponse(
    [property: JsonPropertyName("response")] string Response,
    [property: JsonPropertyName("tool_calls")] IReadOnlyList<ChatToolCall> ToolCalls,
    [property: JsonPropertyName("agent")] string Agent,
    [property: JsonPropertyName("thread_id")] string ThreadId,
    [property: JsonPropertyName("run_id")] string RunId,
    [property: JsonPropertyName("usage")] ChatUsage? Usage,
    [property: JsonPropertyName("stop_reason")] string? StopReason,
    [property: JsonPropertyName("timestamp")] DateTimeOffset? Timestamp);

/// <summary>Body of <c>POST /agents/{agent_name}</c>; every field is optional.</summary>
/// <param name="Name">A display name (the agent's key is <c>agent_name</c> in the path).</param>
/// <param name="Instructions">The system instructions.</param>
/// <param name="Model">The model; the server's default when absent.</param>
/// <param name="MaxParallelTools">How many tool calls run at once, 1-64.</param>
/// <param name="ToolCallTimeout">Seconds one tool call may take, more than 0 and at most 3600.</param>
/// <param name="Tools">The tools the agent may call; every available tool when absent.</param>
public sealed record AgentConfigRequest(
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("instructions")] string? Instructions,
    [property: JsonPropertyName("model")] string? Model,
    [property: JsonPropertyName("max_parallel_tools")] int? MaxParallelTools,
    [property: JsonPropertyName("tool_call_timeout")] double? ToolCallTimeout,
    [property: JsonPropertyName("tools")] IReadOnlyList<string>? Tools);

/// <summary>An agent as seed 003's <c>/agents</c> endpoints show it.</summary>
/// <param name="Name">The agent's key (what <c>agent</c> in a chat request names).</param>
/// <param name="DisplayName">The <c>name</c> given when it was created through <c>POST /agents/{agent_name}</c>.</param>
/// <param name="Instructions">The system instructions.</param>
/// <param name="Model">The model the agent uses (the server's default model when it names none).</param>
/// <param name="MaxParallelTools">How many tool calls run at once.</param>
/// <param name="ToolCallTimeout">Seconds one tool call may take.</param>
/// <param name="Tools">The tools the agent may call.</param>
public sealed record AgentInfo(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("display_name")] string? DisplayName,
    [property: JsonPropertyName("instructions")] string Instructions,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("max_parallel_tools")] int MaxParallelTools,
    [property: JsonPropertyName("tool_call_timeout")] double ToolCallTimeout,
    [property: JsonPropertyName("tools")] IReadOnlyList<string> Tools)
{
    public static AgentInfo From(AgentDefinition agent, string? displayName, string defaultModel, IReadOnlyList<string> allTools) => new(
        agent.Name, displayName, agent.Instructions, agent.Model ?? defaultModel, agent.MaxParallelTools, agent.ToolTimeout.TotalSeconds, agent.Tools ?? allTools);
}

/// <summary>The answer of <c>GET /agents</c>.</summary>
public sealed record AgentListResponse([property: JsonPropertyName("agents")] IReadOnlyList<AgentInfo> Agents);

/// <summary>The answer of <c>POST /agents/{agent_name}</c>.</summary>
public sealed record AgentSavedResponse(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("agent")] AgentInfo Agent);

/// <summary>A WebSocket message of seed 003, either way: <c>{"type": …, "data": …}</c>.</summary>
public sealed record WebSocketEnvelope<T>(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("data")] T Data);

/// <summary>The JSON options of seed 003's wire format (names are explicit on every record).</summary>
public static class StreamingChatJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            Encoder = ContractJson.Options.Encoder,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
