using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Threads;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Time;
using Conversations.Silo.Agents;
using Conversations.Silo.Models;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage;
using Conversations.Silo.Storage.Sqlite;
using Conversations.Silo.Streams;
using Conversations.Silo.Streams.InProcess;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Hosting;

/// <summary>Registers a silo in the host: runtime, grains, storage, streams, models and tools.</summary>
public static class EmbeddedSiloExtensions
{
    /// <summary>
    /// The embedded topology: this process hosts the silo, state is in a SQLite file and streams are in process.
    /// </summary>
    public static IHostApplicationBuilder AddEmbeddedSilo(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSiloCore();
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();

        // Storage: one SQLite file under the content root unless an absolute path is configured.
        services.AddSingleton(sp =>
        {
            var path = sp.GetRequiredService<IOptions<StorageOptions>>().Value.SqlitePath;
            return new SqliteDatabase(Path.GetFullPath(path, builder.Environment.ContentRootPath));
        });
        services.AddSingleton<IStorageMigrator>(sp => new SqliteMigrator(sp.GetRequiredService<SqliteDatabase>()));
        services.AddSingleton<IReadinessCheck, SqliteReadiness>();
        services.AddSingleton<IThreadStore, SqliteThreadStore>();
        services.AddSingleton<IEventLog, SqliteEventLog>();
        services.AddSingleton<IGrainOwnership, LocalOwnership>();
        services.AddSingleton<IAgentCatalog, ConfiguredAgentCatalog>();
        services.AddHostedService<SiloLifecycle>();
        return builder;
    }

    /// <summary>
    /// What every silo has, whatever its storage: the runtime, thread grains, streams, agents' settings, models and
    /// tools. Storage, ownership and the agent catalog are added by the topology.
    /// </summary>
    public static IServiceCollection AddSiloCore(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<RuntimeOptions>().BindConfiguration(RuntimeOptions.SectionName);
        services.AddOptions<StreamOptions>().BindConfiguration(StreamOptions.SectionName);

        // Streams.
        services.AddSingleton<InProcessStreamHub>();
        services.AddSingleton<IThreadStreamProvider>(sp => sp.GetRequiredService<InProcessStreamHub>());
        services.AddSingleton<IThreadEventSource>(sp => sp.GetRequiredService<InProcessStreamHub>());

        // Runtime and grains.
        services.AddSingleton(new GrainKind(typeof(IThreadGrain), CreateThreadGrain));
        services.AddSingleton<ActivationCatalog>();
        services.AddSingleton<IGrainFactory, GrainFactory>();

        return services.AddAgentSettings();
    }

    /// <summary>Agents' settings, models and tools: what silos run, and what gateways describe (health, model lists).</summary>
    public static IServiceCollection AddAgentSettings(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IConfigureOptions<AgentsOptions>, AgentsOptionsSetup>();
        services.AddSingleton<IValidateOptions<AgentsOptions>, AgentsOptionsSetup>();
        services.AddOptions<AgentsOptions>().ValidateOnStart();
        services.AddChatModels();
        services.AddSingleton<ITool, CalculateTool>();
        services.AddSingleton<ITool, GetTimeTool>();
        services.AddSingleton(sp => new ToolRegistry(sp.GetServices<ITool>()));
        return services;
    }

    /// <summary>A thread grain for one activation: its writes and events carry the activation's fencing token.</summary>
    internal static object CreateThreadGrain(IServiceProvider services, GrainContext context, IOwnershipHandle ownership) =>
        ActivatorUtilities.CreateInstance<ThreadGrain>(
            services,
            context,
            new FencedThreadStore(services.GetRequiredService<IThreadStore>(), ownership.FencingToken),
            services.GetRequiredService<InProcessStreamHub>().ForActivation(ownership.FencingToken));
}

/// <summary>Brings a storage's schema up to date at start.</summary>
public interface IStorageMigrator
{
    /// <summary>Where the storage is, for the log (no secrets).</summary>
    string Description { get; }

    Task MigrateAsync(CancellationToken cancellationToken);
}

internal sealed class SqliteMigrator(SqliteDatabase database) : IStorageMigrator
{
    public string Description => database.Path;

    public Task MigrateAsync(CancellationToken cancellationToken) => database.MigrateAsync(cancellationToken);
}

/// <summary>Prepares storage before requests are served; on stop, deactivates grains and flushes streams.</summary>
internal sealed class SiloLifecycle(
    IStorageMigrator storage,
    ActivationCatalog catalog,
    InProcessStreamHub streams,
    IChatModelProvider models,
    ModelSelection selection,
    IHostApplicationLifetime lifetime,
    ILogger<SiloLifecycle> logger) : IHostedService
{
    private Task _deactivation = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await storage.MigrateAsync(cancellationToken).ConfigureAwait(false);

        // Runs end (and tell their subscribers why) as soon as the host begins to stop, so open streaming
        // responses finish before the server stops accepting and draining connections.
        lifetime.ApplicationStopping.Register(() => _deactivation = catalog.DeactivateAllAsync());
        Log.StorageReady(logger, storage.Description);
        if (selection.IsDemo)
        {
            Log.DemoModelInUse(logger);
        }
        else
        {
            Log.ModelConfigured(logger, selection.Endpoint, models.DefaultModel);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _deactivation.WaitAsync(cancellationToken).ConfigureAwait(false);
        await catalog.DeactivateAllAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        await streams.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
