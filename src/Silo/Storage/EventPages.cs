using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Storage;

/// <summary>
/// Reads a thread's events page by page, one query a page and no connection held between pages, so a slow reader
/// never keeps a transaction (or a WAL checkpoint) waiting. Every event log uses it; each supplies its page query.
/// </summary>
internal static class EventPages
{
    /// <param name="readPage">Fills the list with at most <paramref name="pageSize"/> events after the given sequence and at most <paramref name="toSequence"/>, in order.</param>
    /// <param name="afterSequence">Read events after this sequence.</param>
    /// <param name="toSequence">Read events up to this sequence.</param>
    /// <param name="pageSize">Rows per query.</param>
    /// <param name="cancellationToken">Ends the read.</param>
    public static async IAsyncEnumerable<ThreadEvent> ReadAsync(
        Func<long, List<ThreadEvent>, CancellationToken, Task> readPage,
        long afterSequence,
        long toSequence,
        int pageSize,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var page = new List<ThreadEvent>(Math.Min(pageSize, 64));
        var after = afterSequence;
        while (after < toSequence)
        {
            page.Clear();
            await readPage(after, page, cancellationToken).ConfigureAwait(false);
            foreach (var threadEvent in page)
            {
                yield return threadEvent;
            }

            if (page.Count < pageSize)
            {
                yield break;
            }

            after = page[^1].Sequence;
        }
    }
}
