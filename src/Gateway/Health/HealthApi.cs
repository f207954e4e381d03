using Conversations.Gateway.Catalog;
using Conversations.Grains.Abstractions.Health;

namespace Conversations.Gateway.Health;

/// <summary>Health endpoints: liveness (<c>/health</c>, <c>/health/live</c>) and readiness with dependencies (<c>/health/ready</c>).</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        // Open even when authentication is on: probes carry no credentials.
        var health = app.MapGroup("/health").WithTags("Health").AllowAnonymous();
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

    private static async Task<HealthResponse> GetHealth(SiloCatalog silo, TimeProvider time, GatewayMode mode, CancellationToken cancellationToken)
    {
        var models = await silo.GetModelsAsync(cancellationToken);
        return new("healthy", time.GetUtcNow(), mode.Name, models.DefaultModel, models.Tools);
    }

    private static async Task<IResult> GetReadinessAsync(IGrainFactory grains, CancellationToken cancellationToken)
    {
        Dictionary<string, string> results;
        try
        {
            // The silo that answers checks its storage; no answer at all means no silo is reachable.
            results = await grains.GetGrain<IReadinessGrain>(0).CheckAsync(cancellationToken).WaitAsync(ReadinessTimeout, cancellationToken);
            results["silos"] = "ready";
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            results = new Dictionary<string, string>(StringComparer.Ordinal) { ["silos"] = $"no silo answered within {ReadinessTimeout.TotalSeconds:0} s ({ex.GetType().Name})" };
        }

        var ready = results.Values.All(v => v == "ready");
        return TypedResults.Json(new ReadinessResponse(ready ? "ready" : "unavailable", results), statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    private static readonly TimeSpan ReadinessTimeout = TimeSpan.FromSeconds(5);
}

/// <summary>Which topology this gateway runs in.</summary>
public sealed record GatewayMode(string Name);
