using Conversations.Grains.Abstractions.Agents;
using Conversations.Silo.Agents;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Conversations.Silo.Cluster;

/// <summary>
/// A silo's place in the cluster: it stores the configured agents, registers itself in the silo table with the
/// address gateways reach it at, heartbeats, and marks itself stopped on the way out (before its grains deactivate,
/// so gateways stop sending it work first).
/// </summary>
internal sealed class SiloMembership(
    ISiloDirectory directory,
    IAgentCatalog agents,
    IOptions<AgentsOptions> configuredAgents,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<SiloMembership> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        foreach (var (name, agent) in configuredAgents.Value.Agents)
        {
            await agents.UpsertAsync(agent.ToDefinition(name), cancellationToken).ConfigureAwait(false);
        }

        if (await agents.GetAsync(AgentDefinition.DefaultName, cancellationToken).ConfigureAwait(false) is null)
        {
            await agents.UpsertAsync(new AgentDefinition(AgentDefinition.DefaultName), cancellationToken).ConfigureAwait(false);
        }

        await directory.RegisterAsync(settings.SiloId, settings.AdvertisedAddress!.ToString(), cancellationToken).ConfigureAwait(false);
        Log.SiloRegistered(logger, settings.SiloId, settings.AdvertisedAddress.ToString());
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await directory.MarkStoppedAsync(options.Value.SiloId, cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            Log.SiloHeartbeatFailed(logger, ex, options.Value.SiloId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var timer = new PeriodicTimer(settings.HeartbeatInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    if (!await directory.HeartbeatAsync(settings.SiloId, stoppingToken).ConfigureAwait(false))
                    {
                        // The row was marked stopped or removed (e.g. an operator cleaned up): come back.
                        await directory.RegisterAsync(settings.SiloId, settings.AdvertisedAddress!.ToString(), stoppingToken).ConfigureAwait(false);
                    }
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
                {
                    Log.SiloHeartbeatFailed(logger, ex, settings.SiloId);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}

/// <summary><c>NOTIFY thread_activated, '&lt;thread id&gt;'</c>: wakes gateways waiting for an idle thread to activate.</summary>
internal sealed class PostgresActivationNotifier(PostgresDatabase database) : IThreadActivationNotifier
{
    public async Task NotifyActivatedAsync(string threadId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT pg_notify(@channel, @thread_id);", connection);
        command.Parameters.AddWithValue("channel", Client.ClusterProtocol.ThreadActivatedChannel);
        command.Parameters.AddWithValue("thread_id", threadId);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
