using Conversations.Gateway.Health;
using Conversations.Gateway.Streaming;
using Conversations.Grains.Abstractions.Monitoring;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Ops;

/// <summary>This gateway as the cluster's gateway list shows it: an id unique to the process's run, its host and start.</summary>
public sealed class GatewayIdentity(TimeProvider time)
{
    public string Id { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public string Host { get; } = $"{Environment.MachineName} (pid {Environment.ProcessId})";

    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();
}

/// <summary>
/// Reports this gateway's feeds (threads, subscribers, watchers, lag) to the cluster's <see cref="IGatewayRegistryGrain"/>
/// every <see cref="OpsOptions.ReportInterval"/>, so any gateway's dashboard lists every gateway; leaves the list when
/// the host begins to stop. A report that fails (the cluster is not reachable yet) is tried again at the next interval.
/// </summary>
internal sealed class GatewayReporter(
    IGrainFactory grains,
    ThreadEventHub hub,
    GatewayIdentity identity,
    GatewayMode mode,
    IServer server,
    IOptions<OpsOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<GatewayReporter> logger) : BackgroundService
{
    private IGatewayRegistryGrain Registry => grains.GetGrain<IGatewayRegistryGrain>(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Until the host begins to stop (before any service stops: the cluster is still there to leave).
        using var running = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lifetime.ApplicationStopping);
        var interval = options.Value.ReportInterval;
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            do
            {
                try
                {
                    await Registry.ReportAsync(Report(interval), running.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (!running.IsCancellationRequested)
                {
                    Log.GatewayReportFailed(logger, ex, identity.Id);
                }
            }
            while (await timer.WaitForNextTickAsync(running.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (running.IsCancellationRequested)
        {
            // Stopping.
        }

        try
        {
            await Registry.LeaveAsync(identity.Id, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2), stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The cluster is gone or going: the report expires by itself.
            Log.GatewayReportFailed(logger, ex, identity.Id);
        }
    }

    private GatewayReport Report(TimeSpan interval) =>
        new(identity.Id, mode.Name, identity.Host, identity.StartedAt, time.GetUtcNow(), hub.Watched())
        {
            Addresses = [.. server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []],
            // Three missed reports and the gateway is taken for gone.
            ValidFor = interval * 3,
        };
}
