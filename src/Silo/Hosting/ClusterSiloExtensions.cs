using System.ComponentModel.DataAnnotations;
using System.Net;
using Conversations.Grains.Agents;
using Conversations.Grains.Health;
using Conversations.Grains.Threads;
using Conversations.Silo.Retention;
using Conversations.Silo.Storage;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;

namespace Conversations.Silo.Hosting;

/// <summary>
/// The cluster topology's silo: Orleans ADO.NET clustering, grain storage and reminders on PostgreSQL (tables and
/// queries from our migrations, applied at start), thread history and events in our own tables of the same database.
/// </summary>
public static class ClusterSiloExtensions
{
    /// <summary>The ADO.NET invariant of Npgsql, as Orleans' providers name it.</summary>
    public const string Invariant = "Npgsql";

    public static IHostApplicationBuilder AddClusterSilo(this IHostApplicationBuilder builder)
    {
        var options = ClusterSiloOptions.Read(builder.Configuration);
        var database = new PostgresDatabase(options.PostgresConnectionString, options.Schema, options.MaxPoolSize);
        var services = builder.Services;
        services.AddSingleton(database);
        services.AddSingleton(options);
        services.AddSingleton<IStorageMigrator, PostgresMigrator>();
        services.AddHostedService<StorageMigration>();
        services.AddSingleton<IReadinessCheck, PostgresReadiness>();
        services.AddSingleton<IThreadHistory, PostgresThreadHistory>();
        services.AddSingleton<IEventLog, PostgresEventLog>();
        services.AddSingleton<IThreadIndex, PostgresThreadIndex>();
        services.AddEventLogRetention<PostgresEventCompaction>();
        services.AddGrainServices();

        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            silo.ConfigureEndpoints(options.AdvertisedIPAddress(), options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: options.ListenOnAnyAddress);
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = Invariant;
                o.ConnectionString = database.ConnectionString;
            });
            foreach (var name in new[] { ThreadGrain.StorageName, AgentCatalogGrain.StorageName })
            {
                // Orleans' provider under an inner name, reached through the failure mapping under the grains' name.
                silo.AddAdoNetGrainStorage(name + "-adonet", o =>
                {
                    o.Invariant = Invariant;
                    o.ConnectionString = database.ConnectionString;
                    // A cleared state (a deleted thread) leaves no row behind.
                    o.DeleteStateOnClear = true;
                });
                silo.Services.AddGrainStorage(name, (sp, _) => new StorageFailureMapping(name, sp.GetRequiredKeyedService<Orleans.Storage.IGrainStorage>(name + "-adonet")));
            }

            silo.AddIncomingGrainCallFilter<StorageFailureCallFilter>();
            silo.AddRunActivityStreams();
            silo.AddOpsDashboard();
            // A gateway's trace goes on through grain calls into the run.
            silo.AddActivityPropagation();
            silo.UseAdoNetReminderService(o =>
            {
                o.Invariant = Invariant;
                o.ConnectionString = database.ConnectionString;
            });
            // How fast a dead silo is declared dead: its threads come back on a live silo and their watchers are told.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = options.ProbeTimeout;
                o.NumMissedProbesLimit = options.MissedProbesLimit;
            });
        });
        services.AddRunDrain();
        return builder;
    }
}

/// <summary>
/// A silo's cluster settings (section <c>Cluster</c>, environment <c>Cluster__X</c>). A setting that is missing or
/// invalid stops the process at start with a message naming it.
/// </summary>
public sealed class ClusterSiloOptions
{
    public const string SectionName = "Cluster";

    [Required(ErrorMessage = "Cluster:PostgresConnectionString (env Cluster__PostgresConnectionString) is required.")]
    public string PostgresConnectionString { get; set; } = "";

    /// <summary>An optional schema for every table (tests isolate clusters with it).</summary>
    [RegularExpression("^[a-z_][a-z0-9_]{0,62}$", ErrorMessage = "Cluster:Schema must be a lowercase PostgreSQL identifier.")]
    public string? Schema { get; set; }

    /// <summary>How many PostgreSQL connections this silo pools at most, unless the connection string says.</summary>
    [Range(2, 1000, ErrorMessage = "Cluster:MaxPoolSize must be between 2 and 1000.")]
    public int MaxPoolSize { get; set; } = 20;

    [RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Cluster:ClusterId must be 1-64 letters, digits, '_', '.' or '-'.")]
    public string ClusterId { get; set; } = "conversations";

    [RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Cluster:ServiceId must be 1-64 letters, digits, '_', '.' or '-'.")]
    public string ServiceId { get; set; } = "conversations";

    /// <summary>The IP address other silos and clients reach this silo at (tests: 127.0.0.1).</summary>
    [Required(ErrorMessage = "Cluster:AdvertisedAddress (env Cluster__AdvertisedAddress) is required: the IP address other nodes reach this silo at.")]
    public string AdvertisedAddress { get; set; } = "";

    /// <summary>Silo-to-silo port.</summary>
    [Range(1, 65535, ErrorMessage = "Cluster:SiloPort must be a TCP port.")]
    public int SiloPort { get; set; } = 11111;

    /// <summary>The port clients (gateways) connect to.</summary>
    [Range(1, 65535, ErrorMessage = "Cluster:GatewayPort must be a TCP port.")]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Listen on every address rather than only <see cref="AdvertisedAddress"/> (containers).</summary>
    public bool ListenOnAnyAddress { get; set; }

    /// <summary>How long a membership probe waits for an answer.</summary>
    [Range(typeof(TimeSpan), "00:00:00.200", "00:01:00", ErrorMessage = "Cluster:ProbeTimeout must be between 200 ms and 1 min.")]
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many probes in a row a silo may miss before it is suspected (with votes, declared dead).</summary>
    [Range(1, 10, ErrorMessage = "Cluster:MissedProbesLimit must be between 1 and 10.")]
    public int MissedProbesLimit { get; set; } = 2;

    public IPAddress AdvertisedIPAddress() => IPAddress.Parse(AdvertisedAddress);

    /// <summary>Binds and validates the section; throws naming every bad setting.</summary>
    public static ClusterSiloOptions Read(IConfiguration configuration)
    {
        var options = configuration.GetSection(SectionName).Get<ClusterSiloOptions>() ?? new ClusterSiloOptions();
        var problems = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true);
        if (!string.IsNullOrEmpty(options.AdvertisedAddress) && !IPAddress.TryParse(options.AdvertisedAddress, out _))
        {
            problems.Add(new ValidationResult($"Cluster:AdvertisedAddress must be an IP address, not '{options.AdvertisedAddress}'."));
        }

        if (problems.Count > 0)
        {
            throw new OptionsValidationException(SectionName, typeof(ClusterSiloOptions), problems.Select(p => p.ErrorMessage ?? "invalid"));
        }

        return options;
    }
}

internal sealed class PostgresMigrator(PostgresDatabase database) : IStorageMigrator
{
    public string Description => database.Schema is null ? "PostgreSQL" : $"PostgreSQL schema {database.Schema}";

    public Task MigrateAsync(CancellationToken cancellationToken) => database.MigrateAsync(cancellationToken);
}
