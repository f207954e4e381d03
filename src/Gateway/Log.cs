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

    public const int GatewayReportFailedId = 3200;
    public const int OpsSnapshotPartId = 3201;

    [LoggerMessage(GatewayReportFailedId, LogLevel.Debug, "Gateway {GatewayId} could not report itself to the cluster's gateway list; trying again at the next interval")]
    public static partial void GatewayReportFailed(ILogger logger, Exception exception, string gatewayId);

    [LoggerMessage(OpsSnapshotPartId, LogLevel.Warning, "The ops dashboard could not read {Part} from the cluster")]
    public static partial void OpsSnapshotPartFailed(ILogger logger, Exception exception, string part);

    public const int OpenServerId = 3100;
    public const int OpenServerExposedId = 3101;
    public const int AuthenticationOnId = 3102;
    public const int ApiKeyIssuedId = 3103;
    public const int ApiKeyRevokedId = 3104;

    [LoggerMessage(OpenServerId, LogLevel.Warning, "Authentication is off: every caller is an admin. Serving on loopback only ({Addresses}); configure Auth to serve other addresses")]
    public static partial void OpenServer(ILogger logger, string addresses);

    [LoggerMessage(OpenServerExposedId, LogLevel.Warning, "Authentication is off and Auth:AllowOpen is true: every caller on {Addresses} is an admin")]
    public static partial void OpenServerExposed(ILogger logger, string addresses);

    [LoggerMessage(AuthenticationOnId, LogLevel.Information, "Authentication is on: {Jwt}, API keys; admin keys from configuration: {AdminKeyCount}")]
    public static partial void AuthenticationOn(ILogger logger, string jwt, int adminKeyCount);

    [LoggerMessage(ApiKeyIssuedId, LogLevel.Information, "API key {KeyId} issued (roles {Roles}) by {IssuedBy}")]
    public static partial void ApiKeyIssued(ILogger logger, string keyId, string roles, string issuedBy);

    [LoggerMessage(ApiKeyRevokedId, LogLevel.Information, "API key {KeyId} revoked by {RevokedBy}")]
    public static partial void ApiKeyRevoked(ILogger logger, string keyId, string revokedBy);
}
