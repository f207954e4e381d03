namespace Conversations.Silo;

/// <summary>Log messages of the silo host.</summary>
internal static partial class Log
{
    public const int DemoModelInUseId = 2020;
    public const int ModelConfiguredId = 2021;
    public const int StorageReadyId = 2022;
    public const int ModelRegisteredId = 2023;
    public const int EventsCompactedId = 2030;
    public const int EventsNotCompactedId = 2031;

    [LoggerMessage(DemoModelInUseId, LogLevel.Warning, "No model endpoint is configured: the built-in demo model answers. To use a real model set OPENAI_API_KEY (and optionally OPENAI_BASE_URL for Azure OpenAI v1, Ollama or vLLM, and OPENAI_MODEL), the OpenAI section of appsettings.json, or Models:<name> entries")]
    public static partial void DemoModelInUse(ILogger logger);

    [LoggerMessage(ModelConfiguredId, LogLevel.Information, "Model endpoint {Endpoint} with default model {Model}")]
    public static partial void ModelConfigured(ILogger logger, string endpoint, string model);

    [LoggerMessage(ModelRegisteredId, LogLevel.Information, "Model {Name}: {Kind} endpoint {Endpoint}, model id {ModelId}, streaming {Streaming}, tools {Tools}, context window {ContextWindow}")]
    public static partial void ModelRegistered(ILogger logger, string name, string kind, string endpoint, string modelId, bool streaming, bool tools, int? contextWindow);

    [LoggerMessage(StorageReadyId, LogLevel.Information, "Storage ready: {Path}")]
    public static partial void StorageReady(ILogger logger, string path);

    [LoggerMessage(EventsCompactedId, LogLevel.Information, "Retention: {Count} events created before {Cutoff} were deleted from the event log")]
    public static partial void EventsCompacted(ILogger logger, int count, DateTimeOffset cutoff);

    [LoggerMessage(EventsNotCompactedId, LogLevel.Warning, "Retention: the event log could not be compacted; the next pass tries again")]
    public static partial void EventsNotCompacted(ILogger logger, Exception exception);
}
