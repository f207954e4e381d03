using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Abstractions.Runtime;

/// <summary>
/// Thread state storage with optimistic concurrency. Every write names the version it read (the ETag) and fails
/// with <see cref="StorageConflictException"/> when the stored version differs, so a conflict never overwrites
/// newer data.
/// </summary>
public interface IThreadStore
{
    /// <summary>Reads a thread's state and its version, or null when it does not exist.</summary>
    Task<VersionedThreadState?> ReadAsync(string threadId, CancellationToken cancellationToken = default);

    /// <summary>Reads up to <paramref name="limit"/> messages with ordinal greater than <paramref name="afterOrdinal"/>, in order.</summary>
    Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default);

    /// <summary>Finds a message's ordinal by id, or null.</summary>
    Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default);

    /// <summary>Reads a run, or null.</summary>
    Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes the state and upserts the given messages and runs in one transaction, if the stored version equals
    /// <see cref="ThreadWrite.ExpectedVersion"/> (0 for a thread that must not exist yet). Returns the new version.
    /// When <see cref="ThreadWrite.FencingToken"/> is given, a store shared between processes also checks, in the same
    /// transaction, that the thread's lease still holds that token, and throws <see cref="LeaseLostException"/>
    /// (writing nothing) when it does not; a single-process store may ignore the token.
    /// </summary>
    Task<long> WriteAsync(ThreadWrite write, CancellationToken cancellationToken = default);
}

/// <summary>A thread's state with the version it was read at.</summary>
public sealed record VersionedThreadState(ThreadGrainState State, long Version);

/// <summary>One atomic write of a thread: its state, plus messages and runs to insert or replace (by id).</summary>
public sealed record ThreadWrite(ThreadGrainState State, long ExpectedVersion)
{
    public IReadOnlyList<ThreadMessage> Messages { get; init; } = [];
    public IReadOnlyList<RunRecord> Runs { get; init; } = [];

    /// <summary>
    /// The fencing token of the thread's lease the writer holds, or null for an unfenced write. A store shared by
    /// several silos (PostgreSQL) writes only while the lease still holds this token and has not expired; a
    /// single-process store (SQLite, embedded mode) ignores it, as nothing else can own the thread.
    /// </summary>
    public long? FencingToken { get; init; }
}

/// <summary>The stored version was not the one the writer read: someone else wrote first.</summary>
public sealed class StorageConflictException(string threadId, long expectedVersion, long? actualVersion)
    : Exception($"Thread '{threadId}' was written concurrently: expected version {expectedVersion}, found {actualVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}.")
{
    public string ThreadId { get; } = threadId;
    public long ExpectedVersion { get; } = expectedVersion;
    public long? ActualVersion { get; } = actualVersion;
}

/// <summary>
/// A fenced write found that the writer no longer holds the thread's lease with its token: the lease expired, was
/// released or was taken over by another silo. Nothing was written; the writer must stop acting for the thread.
/// </summary>
public sealed class LeaseLostException(string threadId, long fencingToken)
    : Exception($"The lease of thread '{threadId}' with fencing token {fencingToken.ToString(System.Globalization.CultureInfo.InvariantCulture)} is no longer held: it expired or another silo took it over. Nothing was written.")
{
    public string ThreadId { get; } = threadId;
    public long FencingToken { get; } = fencingToken;
}
