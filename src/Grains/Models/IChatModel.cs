using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Tools;

namespace Conversations.Grains.Models;

/// <summary>
/// A chat model the agent loop streams from: an OpenAI-compatible endpoint, or the built-in demo model.
/// </summary>
public interface IChatModel
{
    /// <summary>The model's name as requests and events report it.</summary>
    string Name { get; }

    /// <summary>False for models that can only answer whole (seed 001 rejects <c>stream=true</c> for them).</summary>
    bool SupportsStreaming { get; }

    /// <summary>
    /// Streams one model turn: text pieces and tool-call pieces in the order the model sends them, ending with one
    /// <see cref="ModelFinished"/>. Throws <see cref="ModelException"/> when the endpoint fails, before or mid-stream.
    /// </summary>
    IAsyncEnumerable<ModelUpdate> StreamAsync(ModelRequest request, CancellationToken cancellationToken = default);
}

/// <summary>What the agent loop sends the model for one turn.</summary>
/// <param name="Instructions">The system prompt; null for none.</param>
/// <param name="Messages">The thread's history in order, including tool results.</param>
/// <param name="Tools">The tools the model may call.</param>
public sealed record ModelRequest(string? Instructions, IReadOnlyList<ThreadMessage> Messages, IReadOnlyList<ToolDefinition> Tools)
{
    public double? Temperature { get; init; }
    public int? MaxTokens { get; init; }

    /// <summary>The thread the turn belongs to, for the model's log lines; null outside a run.</summary>
    public string? ThreadId { get; init; }

    /// <summary>The run the turn belongs to, for the model's log lines; null outside a run.</summary>
    public string? RunId { get; init; }
}

/// <summary>One piece of a streamed model turn.</summary>
public abstract record ModelUpdate;

/// <summary>A piece of assistant text.</summary>
public sealed record ModelTextDelta(string Text) : ModelUpdate;

/// <summary>
/// A piece of a tool call. <see cref="Index"/> identifies the call within the turn; the first piece of a call
/// carries its <see cref="Id"/> and <see cref="Name"/>, later pieces carry argument text only.
/// </summary>
public sealed record ModelToolCallDelta(int Index, string? Id, string? Name, string? ArgumentsDelta) : ModelUpdate;

/// <summary>The turn ended: <c>stop</c>, <c>tool_calls</c>, <c>length</c> or <c>content_filter</c>.</summary>
public sealed record ModelFinished(string FinishReason, Usage? Usage) : ModelUpdate;

/// <summary>The model endpoint failed. The message is safe to show a client (no secrets, no URLs with keys).</summary>
/// <summary>A run went over one of its agent's limits (<paramref name="code"/>, e.g. <c>tool_call_limit</c>): the run ends <c>failed</c> with this code and message.</summary>
public sealed class RunLimitException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>The model endpoint failed. The message is safe to show a client (no secrets, no URLs with keys).</summary>
public sealed class ModelException(string code, string message, Exception? innerException = null) : Exception(message, innerException)
{
    /// <summary><c>model_unavailable</c> when the endpoint could not be reached, otherwise <c>model_error</c>.</summary>
    public string Code { get; } = code;
}

/// <summary>Resolves the model an agent names.</summary>
public interface IChatModelProvider
{
    /// <summary>The default model's name.</summary>
    string DefaultModel { get; }

    /// <summary>The model with this name; null for the default one.</summary>
    IChatModel Resolve(string? modelName);
}
