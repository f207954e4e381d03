namespace Conversations.Grains.Abstractions.Threads;

/// <summary>One message of a thread's history, as stored.</summary>
/// <param name="Id">Stable message id (<c>msg_…</c>).</param>
/// <param name="Ordinal">1-based position in the thread; chronological order.</param>
/// <param name="Role"><see cref="MessageRoles"/>.</param>
/// <param name="Content">Text; for a tool message, the tool's result or error.</param>
/// <param name="CreatedAt">When the message was stored first.</param>
[GenerateSerializer, Immutable, Alias("conv.ThreadMessage")]
public sealed record ThreadMessage([Id(0)] string Id, [Id(1)] int Ordinal, [Id(2)] string Role, [Id(3)] string Content, [Id(4)] DateTimeOffset CreatedAt)
{
    /// <summary>The run that produced or consumed this message; null for messages given at thread creation.</summary>
    [Id(5)]
    public string? RunId { get; init; }

    /// <summary>Tool calls an assistant message asked for.</summary>
    [Id(6)]
    public IReadOnlyList<ToolCallInfo>? ToolCalls { get; init; }

    /// <summary>For a tool message: the call it answers.</summary>
    [Id(7)]
    public string? ToolCallId { get; init; }

    /// <summary>For a tool message: the tool's name.</summary>
    [Id(8)]
    public string? Name { get; init; }

    /// <summary><see cref="MessageStatuses"/>.</summary>
    [Id(9)]
    public string Status { get; init; } = MessageStatuses.Completed;

    /// <summary>For an assistant message: why the model stopped (<c>stop</c>, <c>tool_calls</c>, <c>length</c>).</summary>
    [Id(10)]
    public string? FinishReason { get; init; }

    /// <summary>For an assistant message: the tokens the model call used.</summary>
    [Id(11)]
    public Usage? Usage { get; init; }
}

/// <summary>A tool call as an assistant message records it.</summary>
[GenerateSerializer, Immutable, Alias("conv.ToolCallInfo")]
public sealed record ToolCallInfo([Id(0)] string Id, [Id(1)] string Name, [Id(2)] string Arguments);

/// <summary>Token counts of one model call, or the sum over a run.</summary>
[GenerateSerializer, Immutable, Alias("conv.Usage")]
public sealed record Usage([Id(0)] int PromptTokens, [Id(1)] int CompletionTokens, [Id(2)] int TotalTokens)
{
    public static Usage operator +(Usage left, Usage right) => new(
        left.PromptTokens + right.PromptTokens,
        left.CompletionTokens + right.CompletionTokens,
        left.TotalTokens + right.TotalTokens);

    public static Usage? Add(Usage? left, Usage? right) => left is null ? right : right is null ? left : left + right;
}

public static class MessageRoles
{
    public const string System = "system";
    public const string User = "user";
    public const string Assistant = "assistant";
    public const string Tool = "tool";

    public static bool IsKnown(string role) => role is System or User or Assistant or Tool;
}

public static class MessageStatuses
{
    public const string Completed = "completed";
    /// <summary>The run failed while this message was being written; the content is what arrived.</summary>
    public const string Incomplete = "incomplete";
    /// <summary>The run was cancelled while this message was being written.</summary>
    public const string Cancelled = "cancelled";
}
