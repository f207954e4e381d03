using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Threads;

/// <summary>
/// A thread's history as append-only rows of the storage's own: messages (by ordinal) and runs (by id). The thread
/// grain is its only writer; its compact state goes through Orleans' grain storage separately. Implementations raise
/// <see cref="HistoryConflictException"/> for a write that collides with rows another writer stored first, and
/// <see cref="StorageUnavailableException"/> (never a driver's exception) when the storage cannot be reached.
/// </summary>
public interface IThreadHistory
{
    /// <summary>Up to <paramref name="limit"/> messages with ordinal greater than <paramref name="afterOrdinal"/>, in order.</summary>
    Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default);

    /// <summary>A message's ordinal by id, or null.</summary>
    Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default);

    /// <summary>The highest message ordinal stored for the thread; 0 for none.</summary>
    Task<int> GetLastOrdinalAsync(string threadId, CancellationToken cancellationToken = default);

    /// <summary>A run, or null.</summary>
    Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> of the thread's runs, newest first (by start time), skipping the first <paramref name="offset"/>.</summary>
    Task<IReadOnlyList<RunRecord>> ReadRunsAsync(string threadId, int offset, int limit, CancellationToken cancellationToken = default);

    /// <summary>The thread's runs whose status is still <see cref="RunStatuses.Running"/>, oldest first.</summary>
    Task<IReadOnlyList<RunRecord>> ReadUnfinishedRunsAsync(string threadId, CancellationToken cancellationToken = default);

    /// <summary>
    /// In one transaction: inserts <paramref name="messages"/> (new rows: an ordinal or id the thread already has
    /// raises <see cref="HistoryConflictException"/> and nothing is written) and inserts or replaces
    /// <paramref name="runs"/> by id.
    /// </summary>
    Task AppendAsync(string threadId, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken = default);

    /// <summary>
    /// In one transaction: deletes the thread's messages with ordinal <paramref name="fromOrdinal"/> or above and its
    /// runs <paramref name="runIds"/>; rows that are not there are skipped. Undoes rows a change stored before a state
    /// write that never happened, so a change the grain did not accept leaves nothing behind.
    /// </summary>
    Task RemoveAsync(string threadId, int fromOrdinal, IReadOnlyList<string> runIds, CancellationToken cancellationToken = default);
}

/// <summary>
/// A history write collided with rows already stored: another activation of the thread wrote first. Nothing was
/// written; the writer must stop acting for the thread (deactivate) rather than overwrite.
/// </summary>
public sealed class HistoryConflictException(string threadId, string detail, Exception? innerException = null)
    : Exception($"The history of thread '{threadId}' was written concurrently: {detail}", innerException)
{
    public string ThreadId { get; } = threadId;
}
