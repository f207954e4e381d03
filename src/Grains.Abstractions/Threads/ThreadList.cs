namespace Conversations.Grains.Abstractions.Threads;

/// <summary>A thread as a listing shows it: what it is about, its last message, and when it last changed.</summary>
/// <param name="Id">The thread id.</param>
/// <param name="CreatedAt">When the thread was created.</param>
/// <param name="UpdatedAt">When the thread last changed (a message, a run, its metadata).</param>
/// <param name="Metadata">The thread's metadata.</param>
/// <param name="MessageCount">How many messages the thread holds.</param>
/// <param name="Title">The metadata's <c>title</c>, else the thread's first user message (truncated); null for neither.</param>
/// <param name="LastMessagePreview">The start of the thread's last user or assistant message with text; null for none.</param>
[GenerateSerializer, Immutable, Alias("conv.ThreadSummary")]
public sealed record ThreadSummary(
    [Id(0)] string Id,
    [Id(1)] DateTimeOffset CreatedAt,
    [Id(2)] DateTimeOffset UpdatedAt,
    [Id(3)] IReadOnlyDictionary<string, string> Metadata,
    [Id(4)] int MessageCount,
    [Id(5)] string? Title,
    [Id(6)] string? LastMessagePreview)
{
    /// <summary>Who the thread belongs to; null for an open server's threads.</summary>
    [Id(7)]
    public string? Owner { get; init; }

    /// <summary>How many characters of the first user message a title keeps.</summary>
    public const int TitleLength = 100;

    /// <summary>How many characters of the last message a preview keeps.</summary>
    public const int PreviewLength = 200;

    /// <summary><paramref name="text"/> cut to <paramref name="length"/> characters (an ellipsis marks the cut), on one line.</summary>
    public static string? Truncate(string? text, int length)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var line = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        if (line.Length <= length)
        {
            return line;
        }

        // Never cut a surrogate pair in two.
        var cut = char.IsHighSurrogate(line[length - 2]) ? length - 2 : length - 1;
        return string.Concat(line.AsSpan(0, cut), "…");
    }
}

/// <summary>Which threads to list, newest (last updated) first; at most <see cref="Limit"/> of them.</summary>
[GenerateSerializer, Immutable, Alias("conv.ThreadListQuery")]
public sealed record ThreadListQuery([Id(0)] int Limit)
{
    /// <summary>Only the threads of this owner (null: threads without an owner), unless <see cref="AnyOwner"/>.</summary>
    [Id(1)]
    public string? Owner { get; init; }

    /// <summary>Threads of every owner (an admin's or an open server's listing without an owner filter).</summary>
    [Id(2)]
    public bool AnyOwner { get; init; }

    /// <summary>Only threads whose metadata holds every one of these pairs.</summary>
    [Id(3)]
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Keyset cursor: only threads after this one in the order (updated earlier, or as late with a smaller id).</summary>
    [Id(4)]
    public ThreadListPosition? After { get; init; }

    /// <summary>Skip this many threads first (LangGraph's <c>offset</c>); 0 with a cursor.</summary>
    [Id(5)]
    public int Offset { get; init; }
}

/// <summary>A place in a thread listing: the last thread of a page, as the storage holds it.</summary>
[GenerateSerializer, Immutable, Alias("conv.ThreadListPosition")]
public sealed record ThreadListPosition([Id(0)] DateTimeOffset UpdatedAt, [Id(1)] string Id);

/// <summary>A page of a thread listing.</summary>
[GenerateSerializer, Immutable, Alias("conv.ThreadListPage")]
public sealed record ThreadListPage([Id(0)] IReadOnlyList<ThreadSummary> Data, [Id(1)] bool HasMore);

/// <summary>
/// Lists threads from the cluster's thread index (grain state is not queryable; the thread grains keep the index).
/// A stateless worker: any silo answers, each from the storage.
/// </summary>
[Alias("conv.IThreadDirectoryGrain")]
public interface IThreadDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>The key of the one grain to call.</summary>
    public const long Key = 0;

    /// <summary>A page of the threads <paramref name="query"/> selects, newest (last updated) first.</summary>
    [Alias("List")]
    Task<ThreadListPage> ListAsync(ThreadListQuery query, CancellationToken cancellationToken = default);
}
