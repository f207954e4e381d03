using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Threads;

/// <summary>Body of <c>POST /threads</c>.</summary>
/// <param name="ThreadId">A client-chosen id; a new id is generated when absent.</param>
/// <param name="Metadata">Up to 16 string pairs.</param>
/// <param name="Messages">Initial messages (roles user, assistant or system).</param>
/// <param name="Agent">The agent the thread's runs use when a message names none (pinned); <c>default</c> when absent.</param>
public sealed record CreateThreadRequest(string? ThreadId, Dictionary<string, string>? Metadata, List<MessageInput>? Messages, string? Agent = null);

/// <summary>A message given by the client.</summary>
public sealed record MessageInput(string? Role, string? Content);

/// <summary>Body of <c>POST /threads/{id}/messages</c>.</summary>
/// <param name="Content">The user message.</param>
/// <param name="Stream">True: an SSE stream of the run's events. False (default): the final result as JSON.</param>
/// <param name="Agent">The agent to run; <c>default</c> when absent.</param>
/// <param name="MultitaskStrategy">
/// What the message does while another run is active or queued: <c>reject</c> (409), <c>enqueue</c> (a queued run),
/// <c>interrupt</c> (cancel and start), <c>rollback</c> (cancel, remove, start) or <c>steer</c> (join the active run
/// at its next model call); the agent's when absent.
/// </param>
/// <param name="ExpectedLastSequence">Refuse the message (409) unless the thread's last event has this sequence.</param>
/// <param name="ExpectedLastMessageId">Refuse the message (409) unless the thread's last message has this id.</param>
/// <param name="Wait">
/// For <c>"stream": false</c>: true (default) answers when the run has ended, with its result; false answers at once
/// (202) with the run's id and status.
/// </param>
/// <param name="Webhook">An absolute http(s) URL the run's final state is POSTed to when it ends (signed, retried).</param>
public sealed record SendMessageRequest(
    string? Content,
    bool? Stream,
    string? Agent,
    string? MultitaskStrategy = null,
    long? ExpectedLastSequence = null,
    string? ExpectedLastMessageId = null,
    bool? Wait = null,
    string? Webhook = null);

/// <summary>The answer to a send with <c>"wait": false</c>.</summary>
/// <param name="RunId">The run: started, queued, or (when <paramref name="Steered"/>) the active run the message joins.</param>
/// <param name="ThreadId">The thread.</param>
/// <param name="Status"><c>running</c> or <c>queued</c>.</param>
/// <param name="UserMessageId">The id the user message has (or gets when its run starts or it joins).</param>
/// <param name="Steered">True when the message joins the active run (strategy <c>steer</c>) rather than starting one.</param>
public sealed record SendAcceptedResponse(string RunId, string ThreadId, string Status, string UserMessageId, bool Steered);

/// <summary>A page of runs, newest first.</summary>
public sealed record RunListResponse(IReadOnlyList<RunRecord> Data, bool HasMore);

/// <summary>A page of messages.</summary>
public sealed record MessageListResponse(IReadOnlyList<ThreadMessage> Data, string? FirstId, string? LastId, bool HasMore);

/// <summary>The result of a run, for <c>"stream": false</c>.</summary>
/// <param name="RunId">The run.</param>
/// <param name="ThreadId">The thread.</param>
/// <param name="Status"><c>completed</c>, <c>failed</c> or <c>cancelled</c>.</param>
/// <param name="Message">The last assistant message of the run.</param>
/// <param name="ToolCalls">Every tool call of the run with its result or error.</param>
/// <param name="Usage">Tokens used by every model call of the run.</param>
/// <param name="Error">Why the run failed.</param>
/// <param name="StopReason">Why a completed run stopped (<c>stop</c>, <c>length</c>, <c>max_depth</c>).</param>
public sealed record RunResultResponse(
    string RunId,
    string ThreadId,
    string Status,
    RunMessage? Message,
    IReadOnlyList<RunToolCall> ToolCalls,
    Usage? Usage,
    RunError? Error,
    string? StopReason);

/// <summary>An assistant message as a run result reports it.</summary>
public sealed record RunMessage(string Id, string Role, string Content, string FinishReason, string Status);

/// <summary>A tool call as a run result reports it.</summary>
public sealed record RunToolCall(string Id, string Name, string Arguments, string? Result, string? Error, long DurationMs);

/// <summary>Body of <c>POST /threads/{id}/runs/{runId}/tool-outputs</c>.</summary>
/// <param name="ToolOutputs">One output per client tool call the run waits for.</param>
public sealed record SubmitToolOutputsRequest(List<ToolOutputInput?>? ToolOutputs);

/// <summary>A client's output of one tool call.</summary>
/// <param name="ToolCallId">The call, as <c>run.requires_action</c> named it.</param>
/// <param name="Output">What the tool returned, for the model.</param>
public sealed record ToolOutputInput(string? ToolCallId, string? Output);
