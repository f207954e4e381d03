using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Threads;

/// <summary>
/// The queryable side of threads, beside their grain state (which is not): one row per thread with its owner, times,
/// metadata, title, last message preview and message count, for listings. The thread grain is its only writer; the
/// index may lag the grain by a failed write, which the grain's next change or activation repairs. Also the one place
/// a thread's rows are erased. Raises <see cref="StorageUnavailableException"/> (never a driver's exception) when the
/// storage cannot be reached.
/// </summary>
public interface IThreadIndex
{
    /// <summary>Inserts or replaces the thread's row.</summary>
    Task UpsertAsync(ThreadSummary thread, CancellationToken cancellationToken = default);

    /// <summary>The thread's row, or null.</summary>
    Task<ThreadSummary?> GetAsync(string threadId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Up to <see cref="ThreadListQuery.Limit"/> rows the query selects, newest (updated) first, ties by id
    /// descending. Each row's <see cref="ThreadSummary.UpdatedAt"/> is as stored, so it makes an exact cursor.
    /// </summary>
    Task<IReadOnlyList<ThreadSummary>> ListAsync(ThreadListQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// In one transaction: deletes every row the storage holds of the thread besides its grain state and reminders
    /// (messages, runs, events, the index row). Deleting a thread that has none is a no-op.
    /// </summary>
    Task EraseAsync(string threadId, CancellationToken cancellationToken = default);
}
