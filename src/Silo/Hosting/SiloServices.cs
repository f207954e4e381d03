using Conversations.Grains.Agents;
using Conversations.Grains.Models;
using Conversations.Grains.Threads;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Time;
using Conversations.Grains.Webhooks;
using Conversations.Silo.Agents;
using Conversations.Silo.Models;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Conversations.Silo.Hosting;

/// <summary>What every silo has, whatever its topology: agents' settings, models, tools, stream settings, grain collection.</summary>
public static class SiloServices
{
    /// <summary>The grains' services: agents' settings, models and tools, stream settings; the storage is the topology's.</summary>
    /// <summary>
    /// The run-activity streams thread grains report to and the run monitor follows: Orleans memory streams with
    /// implicit subscriptions only (no pub-sub store). Their polling latency is harmless for monitoring.
    /// </summary>
    public static ISiloBuilder AddRunActivityStreams(this ISiloBuilder silo) =>
        silo.AddMemoryStreams(Conversations.Grains.Abstractions.Monitoring.RunActivity.StreamProvider, streams =>
            streams.ConfigureStreamPubSub(Orleans.Streams.StreamPubSubType.ImplicitOnly));

    /// <summary>
    /// The official Orleans Dashboard's silo side (its grains, the grain-call profiler and the runtime counters); the
    /// gateway serves its pages under <c>/ops/orleans</c>. Its live log view is off: logs stay in the logs.
    /// </summary>
    public static ISiloBuilder AddOpsDashboard(this ISiloBuilder silo) =>
        Orleans.Dashboard.ServiceCollectionExtensions.AddDashboard(silo, o => o.HideTrace = true);

    /// <summary>Ends active runs when the host begins to stop (see <see cref="RunDrain"/>).</summary>
    public static IServiceCollection AddRunDrain(this IServiceCollection services) => services.AddHostedService<RunDrain>();

    public static IServiceCollection AddGrainServices(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<ThreadStreamOptions>().BindConfiguration(ThreadStreamOptions.SectionName);
        services.AddOptions<ThreadRunOptions>().BindConfiguration(ThreadRunOptions.SectionName)
            .Validate(o => o.OnLostRun is LostRunPolicies.Resume or LostRunPolicies.Fail, $"Runs:OnLostRun must be '{LostRunPolicies.Resume}' or '{LostRunPolicies.Fail}'.")
            .Validate(o => o.MaxResumes >= 0, "Runs:MaxResumes must be 0 or more.")
            .ValidateOnStart();
        services.AddOptions<ThreadLimitsOptions>().BindConfiguration(ThreadLimitsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<RuntimeOptions>().BindConfiguration(RuntimeOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IConfigureOptions<AgentsOptions>, AgentsOptionsSetup>();
        services.AddSingleton<IValidateOptions<AgentsOptions>, AgentsOptionsSetup>();
        services.AddOptions<AgentsOptions>().ValidateOnStart();
        services.AddChatModels();
        services.AddSingleton<ITool, CalculateTool>();
        services.AddSingleton<ITool, GetTimeTool>();
        // The registry of the built-ins above, the HTTP tools (Tools:Http) and the MCP servers' tools (Tools:Mcp).
        services.AddConfiguredTools();
        services.AddHostedService<ModelAnnouncement>();
        services.AddSingleton<ActiveRuns>();
        services.AddSingleton<Conversations.Grains.Telemetry.GrainsMetrics>();
        services.AddHostedService<WatchesEndOnDeactivation>();
        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.SectionName);
        services.AddHttpClient(RunWebhooks.ClientName);
        services.AddSingleton<RunWebhooks>();
        services.AddHostedService(sp => sp.GetRequiredService<RunWebhooks>());

        // Idle activations go after Runtime:IdleTimeout (an active run keeps its thread grain: it delays deactivation).
        services.AddOptions<GrainCollectionOptions>().Configure<IOptions<RuntimeOptions>>((collection, runtime) =>
        {
            collection.CollectionAge = runtime.Value.IdleTimeout;
            collection.CollectionQuantum = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, runtime.Value.IdleTimeout.Ticks / 4));
        });
        return services;
    }
}

/// <summary>Settings of the silo runtime (section <c>Runtime</c>).</summary>
public sealed class RuntimeOptions
{
    public const string SectionName = "Runtime";

    /// <summary>How long an activation stays in memory without calls or work of its own.</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00", ErrorMessage = "Runtime:IdleTimeout must be between 100 ms and 1 day.")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Says at start which models the silo has and where their endpoints are (never a key).</summary>
internal sealed class ModelAnnouncement(ModelRegistry models, ILogger<ModelAnnouncement> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (models.IsDemo)
        {
            Log.DemoModelInUse(logger);
            return Task.CompletedTask;
        }

        Log.ModelConfigured(logger, models.Default.Endpoint, models.DefaultModel);
        foreach (var model in models.Models)
        {
            Log.ModelRegistered(logger, model.Name, model.Kind, model.Endpoint, model.Model.Name, model.Model.SupportsStreaming, model.SupportsTools, model.ContextWindow);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Ends the silo's active runs as soon as the host begins to stop — before the web server drains its requests and
/// before Orleans stops — so each run's watchers still get its <c>run.failed</c> with the reason and open streaming
/// responses finish instead of holding shutdown up.
/// </summary>
internal sealed class RunDrain(ActiveRuns runs, IHostApplicationLifetime lifetime) : IHostedService
{
    private Task _drain = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(() => _drain = runs.InterruptAllAsync("The server shut down while the run was in progress.", CancellationToken.None));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _drain.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of shutdown time: the silo's deactivation ends what is left.
        }
    }
}

/// <summary>Brings a storage's schema up to date at start.</summary>
public interface IStorageMigrator
{
    /// <summary>Where the storage is, for the log (no secrets).</summary>
    string Description { get; }

    Task MigrateAsync(CancellationToken cancellationToken);
}

/// <summary>Migrates the storage before the silo starts (registered before Orleans, so it runs first).</summary>
internal sealed class StorageMigration(IStorageMigrator storage, ILogger<StorageMigration> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await storage.MigrateAsync(cancellationToken).ConfigureAwait(false);
        Log.StorageReady(logger, storage.Description);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
