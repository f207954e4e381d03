using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Conversations.Silo.Cluster;

/// <summary>
/// Adopts threads whose silo died mid-run: a thread whose lease has expired while its state still names an active
/// run is activated here (taking the lease with a higher fencing token); the activation finds the run it did not
/// start and ends it with <c>run.failed</c>, so every watcher is told and the thread takes new messages. Several
/// silos may sweep at once: the lease decides which one adopts a thread.
/// </summary>
internal sealed class OrphanedRunSweeper(
    PostgresDatabase database,
    IGrainFactory grains,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<OrphanedRunSweeper> logger) : BackgroundService
{
    private const int BatchSize = 50;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.LeaseTtl / 2, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    foreach (var threadId in await FindOrphansAsync(stoppingToken).ConfigureAwait(false))
                    {
                        await AdoptAsync(threadId, stoppingToken).ConfigureAwait(false);
                    }
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
                {
                    Log.OrphanSweepFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task AdoptAsync(string threadId, CancellationToken cancellationToken)
    {
        try
        {
            // Activating is enough: the grain ends the run it finds marked active but not running.
            await grains.GetGrain<IThreadGrain>(threadId).GetAsync(cancellationToken).ConfigureAwait(false);
            Log.OrphanAdopted(logger, threadId, options.Value.SiloId);
        }
        catch (GrainOwnedElsewhereException)
        {
            // Another silo adopted it first.
        }
    }

    private async Task<IReadOnlyList<string>> FindOrphansAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Sql.FindOrphans, connection);
        command.Parameters.AddWithValue("limit", BatchSize);
        var orphans = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            orphans.Add(reader.GetString(0));
        }

        return orphans;
    }

    private static class Sql
    {
        public const string FindOrphans = """
            SELECT l.thread_id
            FROM thread_leases l
            JOIN threads t ON t.id = l.thread_id
            WHERE l.expires_at <= now()
              AND t.state ->> 'activeRunId' IS NOT NULL
            ORDER BY l.expires_at
            LIMIT @limit;
            """;
    }
}
