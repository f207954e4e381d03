using Microsoft.Extensions.Logging;

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

    [LoggerMessage(StorageReadyId, LogLevel.Information, "Embedded storage ready at {Path}")]
    public static partial void StorageReady(ILogger logger, string path);
}
