using Conversations.Grains.Health;
using Conversations.ServiceDefaults.Hosting;
using Conversations.ServiceDefaults.Telemetry;
using Conversations.Silo.Hosting;

namespace Conversations.Silo;

/// <summary>
/// A cluster silo process: an Orleans silo hosting the thread grains, on PostgreSQL. Settings: section <c>Cluster</c>
/// (env <c>Cluster__X</c>) and the model settings (<c>OPENAI_*</c>). It serves <c>/health</c> (liveness) and
/// <c>/health/ready</c> (storage) over HTTP for probes; gateways reach it through Orleans.
/// </summary>
public static class SiloProgram
{
    public static async Task Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(HostArguments.WithoutConfigurationReload(args));
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.AddConversationsTelemetry("conversations-silo");
        builder.AddClusterSilo();

        var app = builder.Build();
        app.MapGet("/health", () => TypedResults.Ok(new { status = "healthy" }));
        app.MapTelemetryEndpoints();
        app.MapGet("/health/ready", async (IEnumerable<IReadinessCheck> checks, CancellationToken cancellationToken) =>
        {
            var results = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var check in checks)
            {
                results[check.Name] = await check.CheckAsync(cancellationToken) ?? "ready";
            }

            var ready = results.Values.All(v => v == "ready");
            return TypedResults.Json(new { status = ready ? "ready" : "unavailable", checks = results }, statusCode: ready ? 200 : 503);
        });
        await app.RunAsync();
    }
}
