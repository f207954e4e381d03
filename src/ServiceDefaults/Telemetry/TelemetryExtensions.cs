using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Conversations.ServiceDefaults.Telemetry;

/// <summary>
/// Telemetry every host of ours has (gateways in both modes, silos): OpenTelemetry with our meters
/// (<c>Conversations.*</c>), Orleans' meter, ASP.NET Core's and HttpClient's; a Prometheus scrape endpoint
/// (<see cref="MapTelemetryEndpoints"/>); and, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, OTLP export of metrics,
/// traces (our sources, Orleans' grain calls, HTTP in and out) and logs (with their scopes).
/// </summary>
public static class TelemetryExtensions
{
    /// <summary>Where Prometheus scrapes a node.</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>Every meter and activity source of ours is named <c>Conversations.{Project}</c>.</summary>
    public const string OurNames = "Conversations.*";

    /// <summary>Orleans' meter (its <c>OrleansInstruments</c>).</summary>
    public const string OrleansMeter = "Microsoft.Orleans";

    /// <summary>Orleans' activity sources (<c>Orleans.Diagnostics.ActivitySources</c>): grain calls and their storage.</summary>
    public static IReadOnlyList<string> OrleansSources { get; } = ["Microsoft.Orleans.Application", "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Storage"];

    /// <summary>The setting (environment variable) that turns OTLP export on, as OpenTelemetry names it.</summary>
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The setting (environment variable) by which an orchestrator names this process's service.</summary>
    public const string ServiceNameSetting = "OTEL_SERVICE_NAME";

    /// <summary>Registers OpenTelemetry for this host; <paramref name="serviceName"/> is its <c>service.name</c>.</summary>
    public static IHostApplicationBuilder AddConversationsTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceName);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                // An orchestrator (the Aspire AppHost) names each process by OTEL_SERVICE_NAME and
                // OTEL_RESOURCE_ATTRIBUTES (service.instance.id), and its dashboard matches telemetry to its resources
                // by them: AddService would overwrite both, so it only names a process nobody else named.
                if (string.IsNullOrWhiteSpace(builder.Configuration[ServiceNameSetting]))
                {
                    resource.AddService(serviceName);
                }
            })
            .WithMetrics(metrics => metrics
                .AddMeter(OurNames, OrleansMeter)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddPrometheusExporter());

        if (!string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointSetting]))
        {
            // Spans cost something to make: only made when they go somewhere. (A listener of its own, such as a
            // test's, still gets every span: the sources and Orleans' propagation are there either way.)
            telemetry
                .WithTracing(tracing => tracing
                    .AddSource(OurNames)
                    .AddSource([.. OrleansSources])
                    .AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments(MetricsPath)
                        && !context.Request.Path.StartsWithSegments("/health"))
                    .AddHttpClientInstrumentation())
                .WithLogging(configureBuilder: null, configureOptions: o =>
                {
                    o.IncludeScopes = true;
                    o.IncludeFormattedMessage = true;
                })
                .UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>
    /// Maps <c>GET /metrics</c> (Prometheus text format). The one place it is mapped: put it behind a policy with the
    /// returned builder, or keep the port firewalled.
    /// </summary>
    public static IEndpointConventionBuilder MapTelemetryEndpoints(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapPrometheusScrapingEndpoint(MetricsPath);
}
