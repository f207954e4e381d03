using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Conversations.Gateway.Cluster;

/// <summary>
/// Cluster mode: the gateway is an Orleans client. It finds the silos' gateway endpoints in the membership table
/// (Orleans' ADO.NET gateway list provider reads it) and holds nothing else of the cluster: no storage, no models,
/// no agents of its own.
/// </summary>
public static class ClusterClientExtensions
{
    public static IHostApplicationBuilder AddClusterClient(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(ClusterClientOptions.SectionName);
        var options = section.Get<ClusterClientOptions>() ?? new ClusterClientOptions();
        var problems = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true))
        {
            throw new OptionsValidationException(ClusterClientOptions.SectionName, typeof(ClusterClientOptions), problems.Select(p => p.ErrorMessage ?? "invalid"));
        }

        builder.UseOrleansClient(client =>
        {
            client.Configure<Orleans.Configuration.ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = options.MembershipConnectionString();
            });
            client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
            client.AddClusterConnectionStatusObserver<FeedReconnector>();
            // The Orleans Dashboard's client side: /ops/orleans reads the silos' dashboard grains.
            Orleans.Dashboard.ServiceCollectionExtensions.AddDashboard(client, o => o.HideTrace = true);
            // The HTTP request's trace goes on through the grain call to the silo.
            client.AddActivityPropagation();
            // Keep trying to reach the cluster while it starts or recovers, instead of failing the gateway.
            client.UseConnectionRetryFilter(async (_, cancellationToken) =>
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                return true;
            });
        });
        return builder;
    }
}

/// <summary>When a silo's connection goes, live feeds call again at once rather than wait for their calls to time out.</summary>
internal sealed class FeedReconnector(Streaming.ThreadEventHub hub) : IClusterConnectionStatusObserver
{
    public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered)
    {
        if (currentNumberOfGateways < previousNumberOfGateways)
        {
            hub.Reconnect();
        }
    }

    public void NotifyClusterConnectionLost() => hub.Reconnect();
}

/// <summary>A gateway's cluster settings (section <c>Cluster</c>, environment <c>Cluster__X</c>).</summary>
public sealed class ClusterClientOptions
{
    public const string SectionName = "Cluster";

    /// <summary>The Npgsql connection string of the cluster's PostgreSQL, where the membership table lists the silos.</summary>
    [Required(ErrorMessage = "Cluster:PostgresConnectionString (env Cluster__PostgresConnectionString) is required in cluster mode.")]
    public string PostgresConnectionString { get; set; } = "";

    /// <summary>An optional schema the cluster's tables live in (tests isolate clusters with it).</summary>
    [RegularExpression("^[a-z_][a-z0-9_]{0,62}$", ErrorMessage = "Cluster:Schema must be a lowercase PostgreSQL identifier.")]
    public string? Schema { get; set; }

    /// <summary>Orleans' cluster id: silos and clients of one cluster share it.</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Cluster:ClusterId must be 1-64 letters, digits, '_', '.' or '-'.")]
    public string ClusterId { get; set; } = "conversations";

    /// <summary>Orleans' service id: stable across deployments of the same service (grain state and reminders are keyed by it).</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Cluster:ServiceId must be 1-64 letters, digits, '_', '.' or '-'.")]
    public string ServiceId { get; set; } = "conversations";

    /// <summary>The connection string for the gateway list: small pool, confined to <see cref="Schema"/>.</summary>
    public string MembershipConnectionString()
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(PostgresConnectionString) { MaxPoolSize = 4 };
        if (Schema is not null)
        {
            builder.SearchPath = Schema;
        }

        return builder.ConnectionString;
    }
}
