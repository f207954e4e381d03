using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Storage;

/// <summary>
/// An activation's view of the thread store: every write carries the activation's fencing token, so once another
/// silo has taken the thread over, a write from this one fails with <see cref="LeaseLostException"/> and changes
/// nothing. Reads pass through.
/// </summary>
public sealed class FencedThreadStore(IThreadStore inner, long? fencingToken) : IThreadStore
{
    public Task<VersionedThreadState?> ReadAsync(string threadId, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(threadId, cancellationToken);

    public Task<IReadOnlyList<ThreadMessage>> ReadMessagesAsync(string threadId, int afterOrdinal, int limit, CancellationToken cancellationToken = default) =>
        inner.ReadMessagesAsync(threadId, afterOrdinal, limit, cancellationToken);

    public Task<int?> FindMessageOrdinalAsync(string threadId, string messageId, CancellationToken cancellationToken = default) =>
        inner.FindMessageOrdinalAsync(threadId, messageId, cancellationToken);

    public Task<RunRecord?> ReadRunAsync(string threadId, string runId, CancellationToken cancellationToken = default) =>
        inner.ReadRunAsync(threadId, runId, cancellationToken);

    public Task<long> WriteAsync(ThreadWrite write, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(fencingToken is null ? write : write with { FencingToken = fencingToken }, cancellationToken);
}
