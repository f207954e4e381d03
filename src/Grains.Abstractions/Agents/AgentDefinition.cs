namespace Conversations.Grains.Abstractions.Agents;

/// <summary>A named agent configuration: what the model is told, which model and tools it uses, and its limits.</summary>
[GenerateSerializer, Immutable, Alias("conv.AgentDefinition")]
public sealed record AgentDefinition([Id(0)] string Name)
{
    public const string DefaultName = "default";

    [Id(1)]
    public string Instructions { get; init; } = "You are a helpful assistant. Use the tools when they help.";

    /// <summary>The model name; null for the configured default model.</summary>
    [Id(2)]
    public string? Model { get; init; }

    /// <summary>Names of the tools the agent may call; null for every registered tool.</summary>
    [Id(3)]
    public IReadOnlyList<string>? Tools { get; init; }

    /// <summary>How many tool calls of one model turn run at once.</summary>
    [Id(4)]
    public int MaxParallelTools { get; init; } = 4;

    /// <summary>How long one tool call may take before it fails.</summary>
    [Id(5)]
    public TimeSpan ToolTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many model calls one run may make.</summary>
    [Id(6)]
    public int MaxDepth { get; init; } = 8;

    /// <summary><see cref="MultitaskStrategies"/>: what a second message does while a run is active.</summary>
    [Id(7)]
    public string MultitaskStrategy { get; init; } = MultitaskStrategies.Reject;

    /// <summary>Sampling temperature, 0-2; null for the model's default.</summary>
    [Id(8)]
    public double? Temperature { get; init; }

    /// <summary>Output token limit per model call; null for the model's default.</summary>
    [Id(9)]
    public int? MaxTokens { get; init; }

    /// <summary>
    /// How many tokens of history one model call may carry (older turns are trimmed to fit); null for no limit. Stored
    /// with the agent; the trimming is the agent loop's.
    /// </summary>
    [Id(10)]
    public int? HistoryBudget { get; init; }

    /// <summary>
    /// Tools the client runs (as OpenAI Assistants' <c>requires_action</c>): when the model calls one, the run says
    /// <c>run.requires_action</c> and waits for its output from any client (<c>POST …/runs/{id}/tool-outputs</c>).
    /// </summary>
    [Id(11)]
    public IReadOnlyList<ClientToolDefinition>? ClientTools { get; init; }

    /// <summary>
    /// HTTP tools of this agent alone (besides those configuration declares for every agent), declared through the
    /// agents API; each is offered to the model whatever <see cref="Tools"/> says.
    /// </summary>
    [Id(12)]
    public IReadOnlyList<HttpToolDefinition>? HttpTools { get; init; }

    /// <summary>How many tool calls one run may make in all; a model turn that asks for more ends the run <c>failed</c> (<c>tool_call_limit</c>).</summary>
    [Id(13)]
    public int MaxToolCalls { get; init; } = DefaultMaxToolCalls;

    /// <summary>The default of <see cref="MaxToolCalls"/>.</summary>
    public const int DefaultMaxToolCalls = 64;

    /// <summary>The most <see cref="MaxToolCalls"/> may be set to.</summary>
    public const int MaxToolCallsLimit = 10_000;
}

/// <summary>
/// An HTTP tool an agent declares: one request per call, to <paramref name="Url"/> (with <c>{argument}</c>
/// placeholders). Credentials are never stored here: header values name them (<c>Bearer ${secret:WEATHER_KEY}</c>)
/// and the silo's configuration holds them.
/// </summary>
/// <param name="Name">The function name the model calls.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Parameters">The JSON schema of the arguments, as JSON text.</param>
/// <param name="Url">An absolute http(s) URL template.</param>
/// <param name="Method">GET, POST, PUT, PATCH or DELETE.</param>
/// <param name="Headers">Request headers; values may name secrets.</param>
/// <param name="Timeout">How long one call may take, retries included.</param>
[GenerateSerializer, Immutable, Alias("conv.HttpToolDefinition")]
public sealed record HttpToolDefinition(
    [Id(0)] string Name,
    [Id(1)] string Description,
    [Id(2)] string Parameters,
    [Id(3)] string Url,
    [Id(4)] string Method,
    [Id(5)] IReadOnlyDictionary<string, string> Headers,
    [Id(6)] TimeSpan Timeout)
{
    /// <summary>Whether failed attempts are retried; null for the method's default (GET, PUT, DELETE yes; POST, PATCH no).</summary>
    [Id(7)]
    public bool? Retry { get; init; }

    /// <summary>The most characters of the response the model reads.</summary>
    [Id(8)]
    public int MaxResponseChars { get; init; } = 16_000;
}

/// <summary>A tool the client runs: described to the model like any other, answered by a client.</summary>
/// <param name="Name">The function name.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Parameters">The JSON schema of its arguments, as JSON text.</param>
[GenerateSerializer, Immutable, Alias("conv.ClientToolDefinition")]
public sealed record ClientToolDefinition([Id(0)] string Name, [Id(1)] string Description, [Id(2)] string Parameters);

public static class MultitaskStrategies
{
    /// <summary>A message sent while a run is active is refused (409, naming the active run).</summary>
    public const string Reject = "reject";

    /// <summary>It waits its turn: a queued run, started when the runs before it have ended (FIFO per thread).</summary>
    public const string Enqueue = "enqueue";

    /// <summary>The active run (and any queued) is cancelled, its partial output kept and marked; the new run starts.</summary>
    public const string Interrupt = "interrupt";

    /// <summary>The active run (and any queued) is cancelled and its messages removed from the history; the new run starts.</summary>
    public const string Rollback = "rollback";

    /// <summary>The message joins the active run at its next model call (after the current tool calls).</summary>
    public const string Steer = "steer";

    /// <summary>Every strategy, in the order the documentation lists them.</summary>
    public static IReadOnlyList<string> All { get; } = [Reject, Enqueue, Interrupt, Rollback, Steer];

    /// <summary>True for a strategy of <see cref="All"/>.</summary>
    public static bool IsKnown(string? strategy) => strategy is not null && All.Contains(strategy, StringComparer.Ordinal);
}

/// <summary>Looks agents up by name.</summary>
public interface IAgentCatalog
{
    /// <summary>The agent with this name, or null.</summary>
    ValueTask<AgentDefinition?> GetAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every agent.</summary>
    ValueTask<IReadOnlyList<AgentDefinition>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds an agent or replaces the one with the same name; runs already started keep the definition they began with.</summary>
    ValueTask UpsertAsync(AgentDefinition agent, CancellationToken cancellationToken = default);
}
