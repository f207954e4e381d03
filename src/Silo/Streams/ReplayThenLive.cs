using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Conversations.Grains.Abstractions.Events;

namespace Conversations.Silo.Streams;

/// <summary>
/// The one way a subscriber catches up and then follows a thread: events older than what memory holds come from the
/// durable log (which must be gapless), then the in-memory tail taken when the subscriber registered, then live
/// events; each sequence is yielded once, in order. Both the in-process hub and the cluster client use it.
/// </summary>
public static class ReplayThenLive
{
    /// <param name="log">The durable log.</param>
    /// <param name="threadId">The thread.</param>
    /// <param name="afterSequence">Yield events after this sequence.</param>
    /// <param name="tailStart">The first sequence held in memory; older ones come from the log.</param>
    /// <param name="snapshot">The tail events after <paramref name="afterSequence"/>, taken atomically with registering <paramref name="live"/>.</param>
    /// <param name="live">Events appended after the snapshot.</param>
    /// <param name="cancellationToken">Ends the subscription.</param>
    public static async IAsyncEnumerable<ThreadEvent> EnumerateAsync(
        IEventLog log,
        string threadId,
        long afterSequence,
        long tailStart,
        IReadOnlyList<ThreadEvent> snapshot,
        ChannelReader<ThreadEvent> live,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var last = afterSequence;
        if (last + 1 < tailStart)
        {
            await foreach (var stored in log.ReadAsync(threadId, last, tailStart - 1, cancellationToken).ConfigureAwait(false))
            {
                if (stored.Sequence != last + 1)
                {
                    throw new InvalidOperationException($"The event log of thread '{threadId}' lacks sequence {last + 1}; resume after {last}.");
                }

                yield return stored;
                last = stored.Sequence;
            }
        }

        foreach (var recent in snapshot)
        {
            if (recent.Sequence > last)
            {
                yield return recent;
                last = recent.Sequence;
            }
        }

        await foreach (var next in live.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (next.Sequence > last)
            {
                yield return next;
                last = next.Sequence;
            }
        }
    }
}
