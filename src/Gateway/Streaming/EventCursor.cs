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
    /// Null when the thread has an event at or after <paramref name="cursor"/> (so resuming after it loses nothing: a
    /// cursor inside a range a crash skipped resumes at the next event), else the sequence of the thread's last event
    /// (0 for none): the cursor lies beyond the end, and a subscription after it would skip every new event until the
    /// numbering passed it.
    /// </summary>
    public static async Task<long?> BeyondEndAsync(IThreadGrain grain, long cursor, CancellationToken cancellationToken)
    {
        if (cursor == 0 || (await grain.ReadEventsAsync(cursor - 1, long.MaxValue, 1, cancellationToken)).Count > 0)
        {
            return null;
        }

        return await LastSequenceBelowAsync(grain, cursor, cancellationToken);
    }

    /// <summary>
    /// The sequence of the thread's last event, which is below <paramref name="bound"/> (0 for none), found with finite
    /// reads only (the grain has no call for it): a galloping search from the start, O(log n) reads of a few events.
    /// </summary>
    private static async Task<long> LastSequenceBelowAsync(IThreadGrain grain, long bound, CancellationToken cancellationToken)
    {
        const int PageSize = 100;
        long known = 0; // 0, or an event's sequence: the last event is at or after it, and before bound.
        long step = 1;
        while (bound - known > 1)
        {
            var probe = known + Math.Min(step, (bound - known) / 2);
            var page = await grain.ReadEventsAsync(probe - 1, long.MaxValue, PageSize, cancellationToken);
            if (page.Count == 0)
            {
                bound = probe;
                continue;
            }

            known = page[^1].Sequence;
            if (page.Count < PageSize)
            {
                // Every event from the probe on: the last one is the thread's last.
                return known;
            }

            step = step > long.MaxValue / 4 ? step : step * 2;
        }

        return known;
    }
}
