using System.Diagnostics.Metrics;
using Conversations.Gateway.Streaming;

namespace Conversations.Gateway.Telemetry;

/// <summary>
/// The gateway's instruments (meter <see cref="MeterName"/>): events relayed to clients by wire format, live
/// subscribers and feeds, and how far behind subscribers read. The README lists them.
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "Conversations.Gateway";

    /// <summary>The attribute naming a stream's wire format (<see cref="WatchFormats"/>).</summary>
    public const string FormatTag = "conversations.stream.format";

    private static readonly long[] LagBuckets = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

    private readonly Counter<long> _eventsRelayed;
    private readonly Histogram<long> _subscriberLag;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _eventsRelayed = meter.CreateCounter<long>("conversations.gateway.events.relayed", "{event}", "SSE items written to clients, by wire format.");
        _subscriberLag = meter.CreateHistogram(
            "conversations.gateway.subscriber.lag", "{event}", "Events a live subscriber had still to read when the feed handed it one more.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = LagBuckets });
        Meter = meter;
    }

    internal Meter Meter { get; }

    public void Relayed(string format) => _eventsRelayed.Add(1, new KeyValuePair<string, object?>(FormatTag, format));

    public void SubscriberLag(int eventsBehind) => _subscriberLag.Record(eventsBehind);

    /// <summary>Observes the hub's live subscribers and feeds (read when metrics are collected).</summary>
    public void Observe(Func<(int Subscribers, int Feeds)> counts)
    {
        Meter.CreateObservableUpDownCounter("conversations.gateway.subscribers", () => (long)counts().Subscribers, "{subscriber}", "Live subscribers of thread streams on this gateway.");
        Meter.CreateObservableUpDownCounter("conversations.gateway.feeds", () => (long)counts().Feeds, "{feed}", "Threads this gateway watches (one streaming grain call each).");
    }

    /// <summary>
    /// The wire format of an SSE response: the <c>format</c> query of the watch endpoints, else the dialect the path
    /// belongs to (the dialects' own endpoints), else native.
    /// </summary>
    public static string FormatOf(HttpRequest request)
    {
        if (request.Query[WatchFormats.QueryName] is [{ } format] && WatchFormats.IsKnown(format))
        {
            return format;
        }

        var path = request.Path;
        return path.StartsWithSegments("/v1/chat") ? WatchFormats.OpenAi
            : path.StartsWithSegments("/v1/pipes") || path.StartsWithSegments("/v1/threads") ? WatchFormats.Langbase
            : path.StartsWithSegments("/conversations") ? WatchFormats.Anthropic
            : path.StartsWithSegments("/completion") ? WatchFormats.Completion
            : path.StartsWithSegments("/chat") ? WatchFormats.Chat
            : WatchFormats.Native;
    }
}
