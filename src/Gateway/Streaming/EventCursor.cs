using System.Globalization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Streaming;

/// <summary>
/// Where a client resumes a thread's event stream: the <c>Last-Event-ID</c> header, else the <c>?after=</c> query.
/// The header wins: an <c>EventSource</c> opened on <c>…/events?after=2</c> keeps that URL and sends the last id it saw
/// in the header when it reconnects, so the query is only the first connection's starting point.
/// </summary>
public static class EventCursor
{
    /// <summary>The SSE resume header.</summary>
    public const string HeaderName = "Last-Event-ID";

    /// <summary>The query parameter that gives the first connection's starting point.</summary>
    public const string QueryName = "after";

    /// <summary>A cursor a client sent: the field that carried it (for errors) and its value.</summary>
    public readonly record struct Requested(string Field, string Raw);

    /// <summary>The cursor of a request: the header when it has one, else the query; null for neither (start live).</summary>
    public static Requested? From(HttpRequest request, string? after)
    {
        var header = request.Headers[HeaderName].ToString();
        if (!string.IsNullOrEmpty(header))
        {
            return new Requested(HeaderName, header);
        }

        return string.IsNullOrEmpty(after) ? null : new Requested(QueryName, after);
    }

    /// <summary>Parses a cursor: a non-negative event sequence.</summary>
    public static bool TryParse(string raw, out long sequence) =>
        long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out sequence);

    /// <summary>
    /// Null when resuming after <paramref name="cursor"/> loses nothing, else the thread's last sequence: the cursor
    /// lies beyond the end, and a subscription after it would skip every new event until the numbering passed it.
    /// The thread's last sequence counts the numbers a crashed activation reserved (the next event comes after them),
    /// so a cursor inside a range a crash skipped is not beyond the end: it resumes at the next event.
    /// </summary>
    public static long? BeyondEnd(ThreadSnapshot thread, long cursor) => cursor > thread.LastSequence ? thread.LastSequence : null;
}
