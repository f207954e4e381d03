using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Retention;

/// <summary>Settings of the event log's retention (section <c>Retention</c>).</summary>
public sealed class RetentionOptions
{
    public const string SectionName = "Retention";

    /// <summary>
    /// Events older than this are deleted from the log (messages and runs stay), except on threads with a run in
    /// progress; null (the default) keeps every event.
    /// </summary>
    public TimeSpan? EventLogMaxAge { get; set; }

    /// <summary>How often a silo compacts the log.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How many events one delete removes at most (a pass repeats it until nothing is left to remove).</summary>
    public int BatchSize { get; set; } = 10_000;
}

/// <summary>Deletes old events of the storage's event log.</summary>
public interface IEventLogCompaction
{
    /// <summary>
    /// Deletes up to <paramref name="batchSize"/> events created before <paramref name="cutoff"/> of threads with no
    /// run in progress; returns how many it deleted.
    /// </summary>
    Task<int> CompactAsync(DateTimeOffset cutoff, int batchSize, CancellationToken cancellationToken = default);
}

/// <summary>
/// Compacts the event log on a timer (<see cref="RetentionOptions.Interval"/>) when
/// <see cref="RetentionOptions.EventLogMaxAge"/> is set: one set-based delete per batch over the whole log, rather
/// than a reminder per thread, which would cost a stored reminder for every thread and wake each one to delete a
/// few rows. Every silo runs it; the deletes are idempotent, so silos that overlap only repeat a cheap query.
/// </summary>
internal sealed class EventLogRetention(
    IEventLogCompaction compaction, IOptions<RetentionOptions> options, TimeProvider time, ILogger<EventLogRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (settings.EventLogMaxAge is not { } maxAge)
        {
            return;
        }

        using var timer = new PeriodicTimer(settings.Interval, time);
        do
        {
            try
            {
                var cutoff = time.GetUtcNow() - maxAge;
                var total = 0;
                int deleted;
                do
                {
                    deleted = await compaction.CompactAsync(cutoff, settings.BatchSize, stoppingToken).ConfigureAwait(false);
                    total += deleted;
                }
                while (deleted >= settings.BatchSize);

                if (total > 0)
                {
                    Log.EventsCompacted(logger, total, cutoff);
                }
            }
            catch (StorageUnavailableException ex)
            {
                // The next tick tries again.
                Log.EventsNotCompacted(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}

/// <summary>Registers the retention with its options, validated at start.</summary>
public static class RetentionServices
{
    public static IServiceCollection AddEventLogRetention<TCompaction>(this IServiceCollection services)
        where TCompaction : class, IEventLogCompaction
    {
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.SectionName)
            .Validate(o => o.EventLogMaxAge is null || o.EventLogMaxAge > TimeSpan.Zero, "Retention:EventLogMaxAge must be a positive time span (e.g. 7.00:00:00), or unset to keep every event.")
            .Validate(o => o.Interval >= TimeSpan.FromMilliseconds(10), "Retention:Interval must be at least 10 ms.")
            .Validate(o => o.BatchSize is >= 1 and <= 1_000_000, "Retention:BatchSize must be between 1 and 1000000.")
            .ValidateOnStart();
        services.AddSingleton<IEventLogCompaction, TCompaction>();
        services.AddHostedService<EventLogRetention>();
        return services;
    }
}
