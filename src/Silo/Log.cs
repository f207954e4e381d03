namespace Conversations.Silo;

/// <summary>Log messages of the silo host.</summary>
internal static partial class Log
{
    public const int DemoModelInUseId = 2020;
    public const int ModelConfiguredId = 2021;
    public const int StorageReadyId = 2022;

    [LoggerMessage(DemoModelInUseId, LogLevel.Warning, "No model endpoint is configured: the built-in demo model answers. To use a real model set OPENAI_API_KEY (and optionally OPENAI_BASE_URL for Azure OpenAI v1, Ollama or vLLM, and OPENAI_MODEL), or the OpenAI section of appsettings.json")]
    public static partial void DemoModelInUse(ILogger logger);

    [LoggerMessage(ModelConfiguredId, LogLevel.Information, "Model endpoint {Endpoint} with default model {Model}")]
    public static partial void ModelConfigured(ILogger logger, string endpoint, string model);

    [LoggerMessage(StorageReadyId, LogLevel.Information, "Storage ready: {Path}")]
    public static partial void StorageReady(ILogger logger, string path);
}
