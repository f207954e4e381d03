using Conversations.Grains.Models;
using Conversations.Grains.Tools;
using Conversations.Silo.Hosting;

namespace Conversations.Gateway.Health;

/// <summary>Health endpoints: liveness (<c>/health</c>, <c>/health/live</c>) and readiness with dependencies (<c>/health/ready</c>).</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        var health = app.MapGroup("/health").WithTags("Health");
        health.MapGet("/", GetHealth).WithName("Health").WithSummary("Liveness, with the time, the default model and the available tools.");
        health.MapGet("/live", () => TypedResults.Ok(new { status = "healthy" })).WithName("Liveness").WithSummary("The process is up.");
        health.MapGet("/ready", GetReadinessAsync).WithName("Readiness").WithSummary("Whether every dependency (storage, silos) is available: 200, else 503.");
        return app;
    }

    /// <summary>Health report. One shape serves the native API and the seeds' clients (status + timestamp for seed 002, tools for seed 003).</summary>
    /// <param name="Status"><c>healthy</c> when the node serves requests.</param>
    /// <param name="Timestamp">The server's time.</param>
    /// <param name="Mode"><c>embedded</c> (a gateway co-hosting a silo on SQLite) or <c>cluster</c>.</param>
    /// <param name="Model">The default model.</param>
    /// <param name="Tools">The tools agents can use.</param>
    public sealed record HealthResponse(string Status, DateTimeOffset Timestamp, string Mode, string Model, IReadOnlyList<string> Tools);

    /// <summary>Readiness report: each dependency with <c>ready</c> or why it is not.</summary>
    public sealed record ReadinessResponse(string Status, IReadOnlyDictionary<string, string> Checks);

    private static HealthResponse GetHealth(IChatModelProvider models, ToolRegistry tools, TimeProvider time, GatewayMode mode) =>
        new("healthy", time.GetUtcNow(), mode.Name, models.DefaultModel, [.. tools.All.Select(t => t.Definition.Name).Order(StringComparer.Ordinal)]);

    private static async Task<IResult> GetReadinessAsync(IEnumerable<IReadinessCheck> checks, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        var results = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var check in checks)
        {
            string? problem;
            try
            {
                problem = await check.CheckAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                problem = "did not answer within 5 s";
            }

            results[check.Name] = problem ?? "ready";
        }

        var ready = results.Values.All(v => v == "ready");
        return TypedResults.Json(new ReadinessResponse(ready ? "ready" : "unavailable", results), statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }
}

/// <summary>Which topology this gateway runs in.</summary>
public sealed record GatewayMode(string Name);
