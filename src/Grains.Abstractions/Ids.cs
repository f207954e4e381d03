namespace Conversations.Grains.Abstractions;

/// <summary>Generated identifiers: a prefix and a time-ordered UUID (v7), so ids sort by creation.</summary>
public static class Ids
{
    public static string NewThreadId() => "thread_" + Guid.CreateVersion7().ToString("N");
    public static string NewMessageId() => "msg_" + Guid.CreateVersion7().ToString("N");
    public static string NewRunId() => "run_" + Guid.CreateVersion7().ToString("N");
    public static string NewToolCallId() => "call_" + Guid.CreateVersion7().ToString("N");
}
