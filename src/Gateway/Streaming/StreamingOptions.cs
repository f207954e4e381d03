using System.ComponentModel.DataAnnotations;

namespace Conversations.Gateway.Streaming;

/// <summary>SSE settings.</summary>
public sealed class StreamingOptions
{
    public const string SectionName = "Streaming";

    /// <summary>How long an SSE stream may stay silent before a heartbeat comment is written.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How many recent events of a watched thread this gateway keeps for subscribers that join (or resume) a little behind.</summary>
    [Range(1, 1_000_000)]
    public int FeedTailCapacity { get; set; } = 4096;

    /// <summary>How many events a slow subscriber may fall behind before it is dropped (it can resume).</summary>
    [Range(1, 10_000_000)]
    public int SubscriberBufferCapacity { get; set; } = 16384;
}
