using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Storage;

/// <summary>Argument checks every storage provider makes the same way, so SQLite and PostgreSQL reject the same input.</summary>
internal static class StorageArguments
{
    /// <summary>Checks a history append before anything is written.</summary>
    public static void ValidateAppend(string threadId, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(runs);

        var ordinals = new HashSet<int>();
        var messageIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            if (message is null || string.IsNullOrEmpty(message.Id) || message.Ordinal < 1)
            {
                throw new ArgumentException("Every message needs an id and an ordinal of 1 or more.", nameof(messages));
            }

            if (!ordinals.Add(message.Ordinal) || !messageIds.Add(message.Id))
            {
                throw new ArgumentException(
                    $"Message '{message.Id}' at ordinal {message.Ordinal} repeats an ordinal or id of the same write.", nameof(messages));
            }
        }

        var runIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var run in runs)
        {
            if (run is null || string.IsNullOrEmpty(run.Id))
            {
                throw new ArgumentException("Every run needs an id.", nameof(runs));
            }

            if (!string.Equals(run.ThreadId, threadId, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Run '{run.Id}' belongs to thread '{run.ThreadId}', not '{threadId}'.", nameof(runs));
            }

            if (!runIds.Add(run.Id))
            {
                throw new ArgumentException($"Run '{run.Id}' appears twice in the same write.", nameof(runs));
            }
        }
    }

    /// <summary>Checks a batch of events before anything is appended.</summary>
    public static void ValidateEvents(IReadOnlyList<ThreadEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var threadEvent in events)
        {
            if (threadEvent is null || string.IsNullOrEmpty(threadEvent.ThreadId) || threadEvent.Sequence < 1)
            {
                throw new ArgumentException("Every event needs a thread id and a sequence of 1 or more.", nameof(events));
            }
        }
    }
}
