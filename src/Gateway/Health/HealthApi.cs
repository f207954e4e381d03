using Conversations.Grains.Models;

namespace Conversations.Gateway.Health;

/// <summary>Health endpoints.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", GetHealth).WithName("Health").WithSummary("Liveness and what this node serves.").WithTags("Health");
        return app;
    }

    /// <summary>Health report.</summary>
    /// <param name="Status"><c>healthy</c> when the node serves requests.</param>
    /// <param name="Mode"><c>embedded</c>: a gateway co-hosting a silo on SQLite.</param>
    /// <param name="Model">The default model.</param>
    public sealed record HealthResponse(string Status, string Mode, string Model);

    private static HealthResponse GetHealth(IChatModelProvider models) => new("healthy", "embedded", models.DefaultModel);
}
