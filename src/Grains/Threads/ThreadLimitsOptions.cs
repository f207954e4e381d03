using System.ComponentModel.DataAnnotations;
using System.Text;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Threads;

/// <summary>
/// How much one thread may hold (section <c>Limits</c>, shared with the gateway's limits). The thread grain checks
/// them before it stores a message a client sends, so they hold on every node and in every dialect; what a run
/// answers is stored whatever they say (the run that was let in may finish).
/// </summary>
public sealed class ThreadLimitsOptions
{
    public const string SectionName = "Limits";

    public const string MaxMessagesSetting = "Limits:MaxMessagesPerThread";
    public const string MaxBytesSetting = "Limits:MaxBytesPerThread";

    /// <summary>The most messages a thread stores (every role): 10,000.</summary>
    [Range(1, int.MaxValue)]
    public int MaxMessagesPerThread { get; set; } = 10_000;

    /// <summary>The most UTF-8 bytes of message content and tool-call arguments a thread stores: 64 MiB.</summary>
    [Range(1, long.MaxValue)]
    public long MaxBytesPerThread { get; set; } = 64L * 1024 * 1024;

    /// <summary>The bytes a message counts for (<see cref="ThreadGrainState.ContentBytes"/>).</summary>
    public static long BytesOf(ThreadMessage message) =>
        Encoding.UTF8.GetByteCount(message.Content ?? "") + (message.ToolCalls?.Sum(c => (long)Encoding.UTF8.GetByteCount(c.Arguments ?? "")) ?? 0);

    /// <summary>The limit that <paramref name="adding"/> more messages of <paramref name="addingBytes"/> bytes would exceed, or null.</summary>
    public ThreadLimit? Exceeded(ThreadGrainState state, int waiting, int adding, long addingBytes)
    {
        var messages = (long)state.MessageCount + waiting;
        if (messages + adding > MaxMessagesPerThread)
        {
            return new ThreadLimit(
                MaxMessagesSetting, MaxMessagesPerThread, messages,
                $"The thread holds {messages} messages (queued ones included); at most {MaxMessagesPerThread} are allowed ({MaxMessagesSetting}). Start a new thread.");
        }

        if (state.ContentBytes + addingBytes > MaxBytesPerThread)
        {
            return new ThreadLimit(
                MaxBytesSetting, MaxBytesPerThread, state.ContentBytes,
                $"The thread holds {state.ContentBytes} bytes of messages and this would add {addingBytes}; at most {MaxBytesPerThread} are allowed ({MaxBytesSetting}). Start a new thread.");
        }

        return null;
    }
}
