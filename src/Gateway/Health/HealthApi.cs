using Conversations.Grains.Models;
using Conversations.Grains.Tools;

namespace Conversations.Gateway.Health;

/// <summary>Health endpoints.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", GetHealth).WithName("Health").WithSummary("Liveness, with the time, the default model and the available tools.").WithTags("Health");
        return app;
    }

    /// <summary>Health report. One shape serves the native API and the seeds' clients (status + timestamp for seed 002, tools for seed 003).</summary>
    /// <param name="Status"><c>healthy</c> when the node serves requests.</param>
    /// <param name="Timestamp">The server's time.</param>
    /// <param name="Mode"><c>embedded</c>: a gateway co-hosting a silo on SQLite.</param>
    /// <param name="Model">The default model.</param>
    /// <param name="Tools">The tools agents can use.</param>
    public sealed record HealthResponse(string Status, DateTimeOffset Timestamp, string Mode, string Model, IReadOnlyList<string> Tools);

    private static HealthResponse GetHealth(IChatModelProvider models, ToolRegistry tools, TimeProvider time) =>
        new("healthy", time.GetUtcNow(), "embedded", models.DefaultModel, [.. tools.All.Select(t => t.Definition.Name).Order(StringComparer.Ordinal)]);
}
