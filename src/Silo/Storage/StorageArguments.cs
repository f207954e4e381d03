using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Runtime;

namespace Conversations.Silo.Storage;

/// <summary>Argument checks every storage provider makes the same way, so SQLite and PostgreSQL reject the same input.</summary>
internal static class StorageArguments
{
    /// <summary>Checks a <see cref="ThreadWrite"/> before anything is written; the fencing token is the caller's to check.</summary>
    public static void ValidateWrite(ThreadWrite write)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentNullException.ThrowIfNull(write.State, nameof(write));
        if (string.IsNullOrEmpty(write.State.Id))
        {
            throw new ArgumentException("The state has no thread id.", nameof(write));
        }

        if (write.ExpectedVersion < 0)
        {
            throw new ArgumentException($"ExpectedVersion must be 0 or more, not {write.ExpectedVersion}.", nameof(write));
        }

        ArgumentNullException.ThrowIfNull(write.Messages, nameof(write));
        ArgumentNullException.ThrowIfNull(write.Runs, nameof(write));

        var ordinals = new HashSet<int>();
        var messageIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in write.Messages)
        {
            if (message is null || string.IsNullOrEmpty(message.Id) || message.Ordinal < 1)
            {
                throw new ArgumentException("Every message needs an id and an ordinal of 1 or more.", nameof(write));
            }

            if (!ordinals.Add(message.Ordinal) || !messageIds.Add(message.Id))
            {
                throw new ArgumentException(
                    $"Message '{message.Id}' at ordinal {message.Ordinal} repeats an ordinal or id of the same write.", nameof(write));
            }
        }

        var runIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var run in write.Runs)
        {
            if (run is null || string.IsNullOrEmpty(run.Id))
            {
                throw new ArgumentException("Every run needs an id.", nameof(write));
            }

            if (!string.Equals(run.ThreadId, write.State.Id, StringComparison.Ordinal))
            {
                throw new ArgumentException(
                    $"Run '{run.Id}' belongs to thread '{run.ThreadId}', not '{write.State.Id}'.", nameof(write));
            }

            if (!runIds.Add(run.Id))
            {
                throw new ArgumentException($"Run '{run.Id}' appears twice in the same write.", nameof(write));
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
