using System.ComponentModel.DataAnnotations;

namespace Conversations.Gateway.Streaming;

/// <summary>SSE settings.</summary>
public sealed class StreamingOptions
{
    public const string SectionName = "Streaming";

    /// <summary>How long an SSE stream may stay silent before a heartbeat comment is written.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);
}
