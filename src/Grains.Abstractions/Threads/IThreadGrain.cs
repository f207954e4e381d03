using Conversations.Grains.Abstractions.Events;

namespace Conversations.Grains.Abstractions.Threads;

/// <summary>
/// One conversation thread, keyed by thread id. It owns the thread's history and is its only writer, processes
/// one call at a time, runs one agent-loop run at a time and publishes every step on the thread's stream.
/// </summary>
[Alias("conv.IThreadGrain")]
public interface IThreadGrain : IGrainWithStringKey
{
    /// <summary>Creates the thread. Returns null when a thread with this id already exists.</summary>
    [Alias("Create")]
    Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default);

    /// <summary>Returns the thread, or null when it does not exist.</summary>
    [Alias("Get")]
    Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default);

    /// <summary>Returns a page of messages in chronological order, or null when the thread does not exist.</summary>
    [Alias("GetMessages")]
    Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends messages to the history without running the agent (Langbase's "append messages"). Refused while a run
    /// is active, so a run's context never changes under it.
    /// </summary>
    [Alias("AppendMessages")]
    Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Appends a user message and starts a run. The run belongs to the thread, not to the caller.</summary>
    [Alias("SendMessage")]
    Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default);

    /// <summary>Cancels a run; idempotent.</summary>
    [Alias("CancelRun")]
    Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// A page of the thread's runs, newest first: queued runs (latest queued first), then the runs that started.
    /// Null for a thread that does not exist.
    /// </summary>
    [Alias("ListRuns")]
    Task<RunPage?> ListRunsAsync(int offset, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives the active run outputs of its client tool calls (<c>run.requires_action</c>); all or none are taken.
    /// </summary>
    [Alias("SubmitToolOutputs")]
    Task<SubmitToolOutputsResult> SubmitToolOutputsAsync(string runId, IReadOnlyList<ToolOutput> outputs, CancellationToken cancellationToken = default);

    /// <summary>Returns a run of this thread, or null.</summary>
    [Alias("GetRun")]
    Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Changes the thread's metadata as a JSON merge patch: a key with a value sets it, a key with null removes it.
    /// Returns the thread, or null when it does not exist.
    /// </summary>
    [Alias("UpdateMetadata")]
    Task<ThreadSnapshot?> UpdateMetadataAsync(IReadOnlyDictionary<string, string?> patch, CancellationToken cancellationToken = default);

    /// <summary>
    /// Erases the thread: an active run is cancelled first (it ends <c>cancelled</c> and its watchers are told),
    /// queued runs are cancelled, then its messages, runs, events, index entry, reminder and state are removed and
    /// the activation goes; every watch ends. Afterwards the thread does not exist (its id may be created again, as a
    /// new thread). Returns false when it did not exist.
    /// </summary>
    [Alias("Delete")]
    Task<bool> DeleteAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The thread's events with sequence greater than <paramref name="afterSequence"/>: those already stored (from the
    /// log), then live ones as the grain appends them, in order with no duplicate, until the caller stops or the
    /// activation ends: then the enumeration ends normally as the deactivation begins (or, when it began between two
    /// of the caller's fetches, the next fails with <c>EnumerationAbortedException</c>); either way the caller calls
    /// again with the last sequence it got, and the thread's next activation goes on. Sequences increase but may skip numbers a crashed activation reserved
    /// and never stored. Nothing is streamed for a thread that does not exist: it ends at once.
    /// </summary>
    [Alias("Watch")]
    IAsyncEnumerable<ThreadEvent> WatchAsync(long afterSequence, CancellationToken cancellationToken = default);

    /// <summary>
    /// Up to <paramref name="limit"/> of the thread's events with sequence greater than <paramref name="afterSequence"/>
    /// and at most <paramref name="throughSequence"/>, in order (stored or still in memory). A finite read: gateways catch
    /// a late subscriber up with it before it joins their live feed of the thread.
    /// </summary>
    [Alias("ReadEvents")]
    Task<List<ThreadEvent>> ReadEventsAsync(long afterSequence, long throughSequence, int limit, CancellationToken cancellationToken = default);
}
