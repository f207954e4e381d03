using Conversations.Grains;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.RunQueue;
using Conversations.Silo.Hosting;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Conversations.Silo.Streams;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// A cluster client (what a stateless gateway is): grain calls go to the silo that owns the thread, sends go
/// through the run queue, and thread streams come from the owning silo with the event log behind them.
/// </summary>
public static class ClusterClientExtensions
{
    public static IServiceCollection AddClusterClient(this IServiceCollection services)
    {
        services.AddClusterStorage();
        services.AddAgentSettings();
        services.AddSingleton(sp =>
        {
            var cluster = sp.GetRequiredService<IOptions<ClusterOptions>>().Value;
            return new ClusterClientOptions { ClusterKey = cluster.ClusterKey, SiloTimeout = cluster.SiloTimeout };
        });
        services.AddSingleton(sp => new SiloLocator(
            sp.GetRequiredService<IThreadLeaseStore>(), sp.GetRequiredService<ISiloDirectory>(), sp.GetRequiredService<ClusterClientOptions>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<SiloHttpClient>();
        services.AddSingleton<ThreadActivationListener>();
        services.AddSingleton<ClusterThreadEventSource>();
        services.AddSingleton<IThreadEventSource>(sp => sp.GetRequiredService<ClusterThreadEventSource>());
        services.AddSingleton(sp => new PostgresRunQueue(sp.GetRequiredService<PostgresDatabase>(), logger: sp.GetRequiredService<ILogger<PostgresRunQueue>>()));
        services.AddSingleton<QueuedSend>();
        services.AddSingleton<IGrainFactory>(sp => new RemoteGrainFactory(
            sp.GetRequiredService<SiloLocator>(),
            sp.GetRequiredService<SiloHttpClient>(),
            sp.GetRequiredService<ILogger<RemoteGrainFactory>>(),
            sp.GetRequiredService<QueuedSend>().SendAsync));
        services.AddSingleton<IReadinessCheck, SilosReadiness>();
        services.AddHostedService<ClusterClientLifecycle>();
        return services;
    }
}

/// <summary>
/// Sends through the run queue: the request is stored in PostgreSQL, a silo takes it (the thread's owner, or any
/// when it has none) and the answer comes back by NOTIFY. When no silo takes it in time it is withdrawn and the
/// caller gets 503, so a request never waits without bound and never runs after its caller was told it failed.
/// </summary>
internal sealed class QueuedSend(PostgresRunQueue queue)
{
    private static readonly TimeSpan TakeTimeout = TimeSpan.FromSeconds(30);

    public async Task<SendMessageResult> SendAsync(string threadId, SendMessage message, CancellationToken cancellationToken)
    {
        var runId = message.RunId ?? Ids.NewRunId();
        await queue.EnqueueAsync(threadId, message with { RunId = runId }, cancellationToken).ConfigureAwait(false);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(TakeTimeout);
        try
        {
            return Unwrap(await queue.WaitForResultAsync(runId, wait.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (await queue.TryCancelQueuedAsync(runId, CancellationToken.None).ConfigureAwait(false))
            {
                throw new DependencyUnavailableException("No silo took the message in time; it was withdrawn. Retry later.");
            }

            // A silo has it: its answer comes soon.
            return Unwrap(await queue.WaitForResultAsync(runId, cancellationToken).ConfigureAwait(false));
        }
    }

    private static SendMessageResult Unwrap(RunQueueOutcome outcome) => outcome switch
    {
        RunQueueOutcome.Done done => done.Result,
        _ => throw new DependencyUnavailableException("The message was withdrawn before a silo took it."),
    };
}

/// <summary>At least one silo is alive to run threads.</summary>
internal sealed class SilosReadiness(ISiloDirectory silos, IOptions<ClusterOptions> options) : IReadinessCheck
{
    public string Name => "silos";

    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            var active = await silos.ListActiveAsync(options.Value.SiloTimeout, cancellationToken).ConfigureAwait(false);
            return active.Count > 0 ? null : "no silo is active";
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            return "the silo table cannot be read";
        }
    }
}

/// <summary>Brings the schema up to date when the gateway starts (safe with other nodes starting at once).</summary>
internal sealed class ClusterClientLifecycle(IStorageMigrator storage) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => storage.MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
