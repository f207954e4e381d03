using Conversations.Grains.Abstractions.Threads;
using Orleans.Concurrency;

namespace Conversations.Grains.Threads;

/// <summary>
/// Answers thread listings from the <see cref="IThreadIndex"/>: a stateless worker, so every silo serves them from
/// the storage, as many at once as it has callers.
/// </summary>
[GrainType("thread-directory"), StatelessWorker]
public sealed class ThreadDirectoryGrain(IThreadIndex index) : Grain, IThreadDirectoryGrain
{
    /// <summary>The most threads one page may hold.</summary>
    public const int MaxLimit = 1000;

    /// <inheritdoc />
    public async Task<ThreadListPage> ListAsync(ThreadListQuery query, CancellationToken cancellationToken = default)
    {
        var limit = Math.Clamp(query.Limit, 1, MaxLimit);
        var rows = await index.ListAsync(query with { Limit = limit + 1, Offset = Math.Max(0, query.Offset) }, cancellationToken);
        return new ThreadListPage([.. rows.Take(limit)], rows.Count > limit);
    }
}
