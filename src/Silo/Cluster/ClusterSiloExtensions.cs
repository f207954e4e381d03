using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Silo.Hosting;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.RunQueue;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage;
using Conversations.Silo.Storage.Postgres;
using Conversations.Silo.Streams;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Conversations.Silo.Cluster;

/// <summary>Registers a cluster silo: PostgreSQL storage, lease-based ownership and membership in the silo table.</summary>
public static class ClusterSiloExtensions
{
    public static IHostApplicationBuilder AddClusterSilo(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSiloCore();
        services.AddClusterStorage();
        services.AddOptions<ClusterOptions>()
            .Validate(o => o.AdvertisedAddress is { IsAbsoluteUri: true }, "Cluster:AdvertisedAddress (env Cluster__AdvertisedAddress) must be the absolute URL gateways reach this silo at, e.g. http://10.0.0.5:7101/.");
        services.AddOptions<RuntimeOptions>().Configure<IOptions<ClusterOptions>>((runtime, cluster) => runtime.SiloId = cluster.Value.SiloId);
        services.AddSingleton<IGrainOwnership, LeaseOwnership>();
        services.AddSingleton<IThreadActivationNotifier, PostgresActivationNotifier>();
        services.AddHostedService<SiloLifecycle>();
        services.AddHostedService<SiloMembership>();
        services.AddHostedService<OrphanedRunSweeper>();

        // Runs reach this silo through the queue in PostgreSQL; a thread owned elsewhere is put back for its owner.
        services.AddSingleton(sp => new PostgresRunQueue(sp.GetRequiredService<PostgresDatabase>(), logger: sp.GetRequiredService<ILogger<PostgresRunQueue>>()));
        services.AddHostedService(sp =>
        {
            var grains = sp.GetRequiredService<IGrainFactory>();
            return new RunQueueWorker(
                sp.GetRequiredService<PostgresRunQueue>(),
                sp.GetRequiredService<IOptions<ClusterOptions>>().Value.SiloId,
                async (threadId, message, cancellationToken) =>
                {
                    try
                    {
                        return await grains.GetGrain<IThreadGrain>(threadId).SendMessageAsync(message, cancellationToken).ConfigureAwait(false);
                    }
                    catch (GrainOwnedElsewhereException)
                    {
                        throw new RunQueueRetryException();
                    }
                },
                logger: sp.GetRequiredService<ILogger<RunQueueWorker>>());
        });
        return builder;
    }

    /// <summary>PostgreSQL storage shared by silos and cluster gateways: threads, events, agents, leases and silos.</summary>
    public static IServiceCollection AddClusterStorage(this IServiceCollection services)
    {
        services.AddOptions<ClusterOptions>()
            .BindConfiguration(ClusterOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ClusterOptions>>().Value;
            var connection = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString);
            if (!options.PostgresConnectionString.Contains("pool size", StringComparison.OrdinalIgnoreCase))
            {
                connection.MaxPoolSize = options.MaxPoolSize;
            }

            return new PostgresDatabase(connection.ConnectionString, options.Schema);
        });
        services.AddSingleton<IStorageMigrator>(sp => new PostgresMigrator(sp.GetRequiredService<PostgresDatabase>()));
        services.AddSingleton<IReadinessCheck, PostgresReadiness>();
        services.AddSingleton<IThreadStore, PostgresThreadStore>();
        services.AddSingleton<PostgresEventLog>();
        services.AddSingleton<IEventLog>(sp => sp.GetRequiredService<PostgresEventLog>());
        services.AddSingleton<IThreadLeaseStore, PostgresThreadLeaseStore>();
        services.AddSingleton<ISiloDirectory, PostgresSiloDirectory>();
        services.AddSingleton<IAgentCatalog, PostgresAgentStore>();
        return services;
    }
}

internal sealed class PostgresMigrator(PostgresDatabase database) : IStorageMigrator
{
    public string Description => "PostgreSQL" + (database.Schema is { } schema ? $" (schema {schema})" : string.Empty);

    public Task MigrateAsync(CancellationToken cancellationToken) => database.MigrateAsync(cancellationToken);
}
