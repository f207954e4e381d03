namespace Conversations.Grains.Abstractions.Events;

/// <summary>The wire names of the native events.</summary>
public static class EventTypes
{
    public const string RunStarted = "run.started";
    public const string MessageStarted = "message.started";
    public const string TextDelta = "text.delta";
    public const string ToolCallStarted = "tool_call.started";
    public const string ToolCallArgumentsDelta = "tool_call.arguments.delta";
    public const string ToolCallCompleted = "tool_call.completed";
    public const string ToolCallFailed = "tool_call.failed";
    public const string AgentStatus = "agent.status";
    public const string MessageCompleted = "message.completed";
    public const string RunCompleted = "run.completed";
    public const string RunFailed = "run.failed";
    public const string RunCancelled = "run.cancelled";
    public const string RunQueued = "run.queued";
    public const string RunSteered = "run.steered";
    public const string RunRolledBack = "run.rolled_back";
    public const string RunRequiresAction = "run.requires_action";
}

/// <summary>The statuses of <see cref="AgentStatusChanged"/>, as seed 004 names them.</summary>
public static class AgentStatuses
{
    public const string StartingGeneration = "starting_generation";
    public const string ToolCallDetected = "tool_call_detected";
    public const string ToolsExecuted = "tools_executed";
    public const string MaxDepthReached = "max_depth_reached";
    public const string ContinuingGeneration = "continuing_generation";

    /// <summary>The run goes on in a new activation after the one running it was lost (details: <c>attempt</c>, <c>model</c>).</summary>
    public const string Resuming = "resuming";
}

/// <summary>Codes of <see cref="Threads.RunError"/>.</summary>
public static class RunErrorCodes
{
    public const string ModelUnavailable = "model_unavailable";
    public const string ModelError = "model_error";
    public const string Interrupted = "interrupted";
    public const string Internal = "internal_error";

    /// <summary>The model asked for more tool calls than the agent's <c>maxToolCalls</c> allows one run.</summary>
    public const string ToolCallLimit = "tool_call_limit";
}
