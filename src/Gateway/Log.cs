namespace Conversations.Gateway;

/// <summary>Log messages of the gateway. Lines about a thread carry ThreadId.</summary>
internal static partial class Log
{
    public const int FeedInterruptedId = 3000;

    [LoggerMessage(FeedInterruptedId, LogLevel.Warning, "The live feed of thread {ThreadId} was interrupted after sequence {Sequence} (attempt {Attempt}); calling again")]
    public static partial void FeedInterrupted(ILogger logger, Exception exception, string threadId, long sequence, int attempt);

    public const int SubscriberCutId = 3001;

    [LoggerMessage(SubscriberCutId, LogLevel.Information, "A subscriber of thread {ThreadId} fell too far behind and was cut; it can resume after sequence {Sequence}")]
    public static partial void SubscriberCut(ILogger logger, string threadId, long sequence);

    public const int GatewayReportFailedId = 3100;
    public const int OpsSnapshotPartId = 3101;

    [LoggerMessage(GatewayReportFailedId, LogLevel.Debug, "Gateway {GatewayId} could not report itself to the cluster's gateway list; trying again at the next interval")]
    public static partial void GatewayReportFailed(ILogger logger, Exception exception, string gatewayId);

    [LoggerMessage(OpsSnapshotPartId, LogLevel.Warning, "The ops dashboard could not read {Part} from the cluster")]
    public static partial void OpsSnapshotPartFailed(ILogger logger, Exception exception, string part);
}
