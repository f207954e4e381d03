using Conversations.Silo.Cluster;

namespace Conversations.Silo;

/// <summary>
/// A cluster silo process: hosts thread grains on PostgreSQL storage and serves their calls and live events to
/// gateways over its internal endpoints. Settings: section <c>Cluster</c> (env <c>Cluster__X</c>) and the model
/// settings (<c>OPENAI_*</c>).
/// </summary>
public static class SiloProgram
{
    public static async Task Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddProblemDetails();
        builder.AddClusterSilo();

        var app = builder.Build();
        app.UseExceptionHandler();
        app.MapInternalApi();
        await app.RunAsync();
    }
}
