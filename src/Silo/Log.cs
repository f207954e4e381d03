
namespace Conversations.Silo;

/// <summary>Log messages of the runtime. Lines about a thread carry ThreadId.</summary>
internal static partial class Log
{
    public const int ActivationFailedId = 2000;
    public const int DeactivationFailedId = 2001;
    public const int DeactivatingId = 2002;
    public const int EventPersistFailedId = 2010;
    public const int SubscriberOverflowId = 2011;
    public const int DemoModelInUseId = 2020;
    public const int ModelConfiguredId = 2021;
    public const int StorageReadyId = 2022;
    public const int UpstreamOpenedId = 4000;
    public const int UpstreamFailedId = 4001;
    public const int EventLogGapId = 4002;
    public const int ActivationListenerFailedId = 4003;
    public const int CallRedirectedId = 4004;
    public const int CallConnectFailedId = 4005;

    public const int LeaseLostId = 2030;
    public const int LeaseRenewalFailedId = 2031;
    public const int LeaseReleaseFailedId = 2032;
    public const int EventsFencedOffId = 2033;
    public const int OrphanAdoptedId = 2050;
    public const int OrphanSweepFailedId = 2051;

    [LoggerMessage(OrphanAdoptedId, LogLevel.Warning, "Thread {ThreadId} had a run in progress on a silo whose lease expired; silo {SiloId} adopted it")]
    public static partial void OrphanAdopted(ILogger logger, string threadId, string siloId);

    [LoggerMessage(OrphanSweepFailedId, LogLevel.Warning, "Looking for threads orphaned by a dead silo failed")]
    public static partial void OrphanSweepFailed(ILogger logger, Exception exception);

    public const int SiloRegisteredId = 2040;
    public const int SiloHeartbeatFailedId = 2041;

    [LoggerMessage(SiloRegisteredId, LogLevel.Information, "Silo {SiloId} joined the cluster at {Address}")]
    public static partial void SiloRegistered(ILogger logger, string siloId, string address);

    [LoggerMessage(SiloHeartbeatFailedId, LogLevel.Warning, "Silo {SiloId} could not update the silo table")]
    public static partial void SiloHeartbeatFailed(ILogger logger, Exception exception, string siloId);

    [LoggerMessage(LeaseLostId, LogLevel.Warning, "Lost the lease of thread {ThreadId} (token {Token}); its activation stops writing and deactivates")]
    public static partial void LeaseLost(ILogger logger, string threadId, long token);

    [LoggerMessage(LeaseRenewalFailedId, LogLevel.Warning, "Renewing the lease of thread {ThreadId} failed; retrying while it is still valid")]
    public static partial void LeaseRenewalFailed(ILogger logger, Exception exception, string threadId);

    [LoggerMessage(LeaseReleaseFailedId, LogLevel.Warning, "Releasing the lease of thread {ThreadId} failed; it expires on its own")]
    public static partial void LeaseReleaseFailed(ILogger logger, Exception exception, string threadId);

    [LoggerMessage(EventsFencedOffId, LogLevel.Warning, "{Count} events of thread {ThreadId} were refused: this silo no longer holds the thread's lease")]
    public static partial void EventsFencedOff(ILogger logger, string threadId, int count);

    [LoggerMessage(ActivationFailedId, LogLevel.Error, "Activation of {Grain} failed")]
    public static partial void ActivationFailed(ILogger logger, Exception exception, string grain);

    [LoggerMessage(DeactivationFailedId, LogLevel.Error, "Deactivation of {Grain} failed")]
    public static partial void DeactivationFailed(ILogger logger, Exception exception, string grain);

    [LoggerMessage(DeactivatingId, LogLevel.Debug, "Deactivating {Grain}: {Reason}")]
    public static partial void Deactivating(ILogger logger, string grain, string reason);

    [LoggerMessage(EventPersistFailedId, LogLevel.Error, "Persisting {Count} events failed; retrying")]
    public static partial void EventPersistFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(SubscriberOverflowId, LogLevel.Warning, "A subscriber of thread {ThreadId} fell {Count} events behind and was disconnected; it can resume with Last-Event-ID")]
    public static partial void SubscriberOverflow(ILogger logger, string threadId, int count);

    [LoggerMessage(DemoModelInUseId, LogLevel.Warning, "No model endpoint is configured: the built-in demo model answers. To use a real model set OPENAI_API_KEY (and optionally OPENAI_BASE_URL for Azure OpenAI v1, Ollama or vLLM, and OPENAI_MODEL), or the OpenAI section of appsettings.json")]
    public static partial void DemoModelInUse(ILogger logger);

    [LoggerMessage(ModelConfiguredId, LogLevel.Information, "Model endpoint {Endpoint} with default model {Model}")]
    public static partial void ModelConfigured(ILogger logger, string endpoint, string model);

    [LoggerMessage(StorageReadyId, LogLevel.Information, "Storage ready: {Path}")]
    public static partial void StorageReady(ILogger logger, string path);

    [LoggerMessage(UpstreamOpenedId, LogLevel.Debug, "Streaming thread {ThreadId} from the silo at {Address} after sequence {Sequence}")]
    public static partial void UpstreamOpened(ILogger logger, string threadId, string address, long sequence);

    [LoggerMessage(UpstreamFailedId, LogLevel.Warning, "The upstream of thread {ThreadId} from {Address} failed; it resumes after sequence {Sequence}")]
    public static partial void UpstreamFailed(ILogger logger, Exception exception, string threadId, string address, long sequence);

    [LoggerMessage(EventLogGapId, LogLevel.Error, "The event log of thread {ThreadId} lacks sequence {Sequence}; later events are held back")]
    public static partial void EventLogGap(ILogger logger, string threadId, long sequence);

    [LoggerMessage(ActivationListenerFailedId, LogLevel.Warning, "Listening for thread activations failed; reconnecting in {Delay}")]
    public static partial void ActivationListenerFailed(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(CallRedirectedId, LogLevel.Debug, "Call {Method} of thread {ThreadId} to silo {SiloId} was redirected to silo {OwnerSiloId}")]
    public static partial void CallRedirected(ILogger logger, string threadId, string method, string siloId, string ownerSiloId);

    [LoggerMessage(CallConnectFailedId, LogLevel.Warning, "Call {Method} of thread {ThreadId} could not reach silo {SiloId} at {Address}; locating the thread again")]
    public static partial void CallConnectFailed(ILogger logger, Exception exception, string threadId, string method, string siloId, string address);
}
