using System.Net;
using System.Net.Sockets;
using Conversations.Grains.Agents;
using Conversations.Grains.Health;
using Conversations.Grains.Threads;
using Conversations.Silo.Retention;
using Conversations.Silo.Storage;
using Conversations.Silo.Storage.Sqlite;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;

namespace Conversations.Silo.Hosting;

/// <summary>The embedded topology: this process co-hosts an Orleans silo, with state in a SQLite file.</summary>
public static class EmbeddedSiloExtensions
{
    /// <summary>
    /// Co-hosts a silo in this process: localhost clustering on free loopback ports (or <c>Orleans:SiloPort</c> and
    /// <c>Orleans:GatewayPort</c>), grain state, history and events in one SQLite file (<c>Storage:SqlitePath</c>),
    /// in-memory reminders. The host's <see cref="IGrainFactory"/> reaches the grains.
    /// </summary>
    public static IHostApplicationBuilder AddEmbeddedSilo(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp =>
        {
            var path = sp.GetRequiredService<IOptions<StorageOptions>>().Value.SqlitePath;
            return SqliteFileLock.Acquire(Path.GetFullPath(path, builder.Environment.ContentRootPath));
        });
        services.AddSingleton(sp =>
        {
            // One embedded server per file: the lock is taken before the database is opened.
            sp.GetRequiredService<SqliteFileLock>();
            var path = sp.GetRequiredService<IOptions<StorageOptions>>().Value.SqlitePath;
            return new SqliteDatabase(Path.GetFullPath(path, builder.Environment.ContentRootPath));
        });
        services.AddSingleton<IStorageMigrator, SqliteMigrator>();
        services.AddHostedService<StorageMigration>();
        services.AddSingleton<IReadinessCheck, SqliteReadiness>();
        services.AddSingleton<IThreadHistory, SqliteThreadHistory>();
        services.AddSingleton<IEventLog, SqliteEventLog>();
        services.AddSingleton<IThreadIndex, SqliteThreadIndex>();
        services.AddEventLogRetention<SqliteEventCompaction>();
        services.AddGrainServices();

        var siloPort = builder.Configuration.GetValue<int?>("Orleans:SiloPort") ?? FreeLoopbackPort();
        var gatewayPort = builder.Configuration.GetValue<int?>("Orleans:GatewayPort") ?? FreeLoopbackPort();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "conversations", clusterId: "embedded");
            silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = IPAddress.Loopback);
            silo.Services.AddGrainStorage(ThreadGrain.StorageName, (sp, name) => new StorageFailureMapping(name, ActivatorUtilities.CreateInstance<SqliteGrainStorage>(sp)));
            silo.Services.AddGrainStorage(AgentCatalogGrain.StorageName, (sp, name) => new StorageFailureMapping(name, ActivatorUtilities.CreateInstance<SqliteGrainStorage>(sp)));
            silo.AddIncomingGrainCallFilter<StorageFailureCallFilter>();
            silo.UseInMemoryReminderService();
            silo.AddRunActivityStreams();
            silo.AddOpsDashboard();
            // The HTTP request's trace goes on through grain calls into the run.
            silo.AddActivityPropagation();
        });
        services.AddRunDrain();
        return builder;
    }

    /// <summary>A port no one listens on now (the OS picks it); the silo binds it a moment later.</summary>
    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

internal sealed class SqliteMigrator(SqliteDatabase database) : IStorageMigrator
{
    public string Description => database.Path;

    public Task MigrateAsync(CancellationToken cancellationToken) => database.MigrateAsync(cancellationToken);
}
