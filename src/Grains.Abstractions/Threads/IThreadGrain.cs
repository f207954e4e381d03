using Conversations.Grains.Abstractions.Runtime;

namespace Conversations.Grains.Abstractions.Threads;

/// <summary>
/// One conversation thread, keyed by thread id. It owns the thread's history and is its only writer, processes
/// one call at a time, runs one agent-loop run at a time and publishes every step on the thread's stream.
/// </summary>
public interface IThreadGrain : IGrainWithStringKey
{
    /// <summary>Creates the thread. Returns null when a thread with this id already exists.</summary>
    Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default);

    /// <summary>Returns the thread, or null when it does not exist.</summary>
    Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default);

    /// <summary>Returns a page of messages in chronological order, or null when the thread does not exist.</summary>
    Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends messages to the history without running the agent (Langbase's "append messages"). Refused while a run
    /// is active, so a run's context never changes under it.
    /// </summary>
    Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Appends a user message and starts a run. The run belongs to the thread, not to the caller.</summary>
    Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default);

    /// <summary>Cancels a run; idempotent.</summary>
    Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Returns a run of this thread, or null.</summary>
    Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default);
}
