using Conversations.Grains.Abstractions.Monitoring;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Ops;

/// <summary>
/// Takes the dashboard's numbers from the cluster, never from this gateway's memory: the silos from the membership
/// table and their runtime statistics (Orleans' management grain), runs, tokens, times to first token and tool
/// calls from each active silo's run monitor, gateways from the cluster's gateway list. Dashboards on one gateway
/// share one snapshot per half refresh interval.
/// </summary>
public sealed class ClusterView(
    IGrainFactory grains,
    GatewayIdentity identity,
    TimeProvider time,
    IOptions<OpsOptions> options,
    ILogger<ClusterView> logger)
{
    private const int RecentErrorCount = 20;
    private static readonly TimeSpan ShowDeadSilosFor = TimeSpan.FromMinutes(10);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private OpsSnapshot? _latest;

    /// <summary>A snapshot at most half a refresh interval old.</summary>
    public async Task<OpsSnapshot> GetAsync(CancellationToken cancellationToken)
    {
        var maxAge = options.Value.RefreshInterval / 2;
        if (_latest is { } fresh && time.GetUtcNow() - fresh.At < maxAge)
        {
            return fresh;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_latest is { } taken && time.GetUtcNow() - taken.At < maxAge)
            {
                return taken;
            }

            _latest = await TakeAsync(cancellationToken).ConfigureAwait(false);
            return _latest;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<OpsSnapshot> TakeAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var problems = new List<string>();
        var management = grains.GetGrain<IManagementGrain>(0);

        // The management grain's methods take no token: WaitAsync bounds what the dashboard waits for.
        var members = await Read("silos", () => management.GetDetailedHosts(onlyActive: false).WaitAsync(cancellationToken), []).ConfigureAwait(false);
        var shown = members
            .Where(m => m.Status != SiloStatus.Dead || now - new DateTimeOffset(m.IAmAliveTime, TimeSpan.Zero) < ShowDeadSilosFor)
            .OrderBy(m => m.SiloAddress.ToString(), StringComparer.Ordinal)
            .ToList();
        var active = shown.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToArray();

        var statisticsTask = active.Length == 0
            ? Task.FromResult<SiloRuntimeStatistics[]>([])
            : Read("silo statistics", () => management.GetRuntimeStatistics(active).WaitAsync(cancellationToken), []);
        var grainsTask = Read("grain statistics", () => management.GetSimpleGrainStatistics().WaitAsync(cancellationToken), []);
        var monitorsTask = Task.WhenAll(active.Select(silo =>
            Read<RunMonitorSnapshot?>($"the run monitor of {silo}", async () => await grains.GetGrain<IRunMonitorGrain>(silo.ToString()).GetSnapshotAsync(cancellationToken).ConfigureAwait(false), null)));
        var gatewaysTask = Read<IReadOnlyList<GatewayReport>>("gateways", () => grains.GetGrain<IGatewayRegistryGrain>(0).GetGatewaysAsync(cancellationToken), []);
        await Task.WhenAll(statisticsTask, grainsTask, monitorsTask, gatewaysTask).ConfigureAwait(false);

        var statistics = active.Zip(await statisticsTask.ConfigureAwait(false)).ToDictionary(p => p.First, p => p.Second);
        var silos = shown.Select(m =>
        {
            statistics.TryGetValue(m.SiloAddress, out var s);
            return new OpsSilo(
                m.SiloAddress.ToString(),
                m.SiloName,
                m.Status.ToString(),
                new DateTimeOffset(m.StartTime, TimeSpan.Zero),
                m.IAmAliveTime == default ? null : new DateTimeOffset(m.IAmAliveTime, TimeSpan.Zero),
                s?.ActivationCount,
                s?.RecentlyUsedActivationCount,
                s is null ? null : Math.Round(s.EnvironmentStatistics.FilteredCpuUsagePercentage, 1),
                s?.EnvironmentStatistics.FilteredMemoryUsageBytes,
                s?.EnvironmentStatistics.MaximumAvailableMemoryBytes,
                s?.IsOverloaded);
        }).ToList();

        var monitors = (await monitorsTask.ConfigureAwait(false)).OfType<RunMonitorSnapshot>().ToList();
        var grainTypes = (await grainsTask.ConfigureAwait(false))
            .GroupBy(g => g.GrainType, StringComparer.Ordinal)
            .Select(g => new OpsGrainType(ShortTypeName(g.Key), g.Sum(x => x.ActivationCount)))
            .OrderByDescending(g => g.Activations)
            .ThenBy(g => g.Type, StringComparer.Ordinal)
            .ToList();
        var gateways = (await gatewaysTask.ConfigureAwait(false))
            .Select(g => new OpsGateway(g.Id, g.Mode, g.Host, g.Addresses, g.StartedAt, g.ReportedAt, g.Threads.Sum(t => t.Subscribers), g.Threads.Sum(t => t.Watchers), g.Threads))
            .ToList();

        var activeRuns = monitors.SelectMany(m => m.ActiveRuns)
            .OrderBy(r => r.At)
            .Select(r => new OpsActiveRun(r.ThreadId, r.RunId, r.Agent, r.Model, r.Silo, r.At, Math.Max(0, Math.Round((now - r.At).TotalSeconds, 1))))
            .ToList();
        var timesToFirstToken = monitors.SelectMany(m => m.TimesToFirstTokenMs).Order().ToArray();
        var runs = new OpsRuns(
            activeRuns.Count,
            grainTypes.Where(g => g.Type == "ThreadGrain").Sum(g => g.Activations),
            monitors.Sum(m => m.Started),
            monitors.Sum(m => m.Completed),
            monitors.Sum(m => m.Failed),
            monitors.Sum(m => m.Cancelled),
            monitors.Sum(m => m.PromptTokens),
            monitors.Sum(m => m.CompletionTokens),
            Math.Round(monitors.Sum(m => m.RecentTokens) / RunMonitorWindows.TokenRate.TotalSeconds, 1),
            Percentile(timesToFirstToken, 0.50),
            Percentile(timesToFirstToken, 0.95),
            timesToFirstToken.Length,
            monitors.Sum(m => m.ToolCalls),
            monitors.Sum(m => m.ToolFailures));

        var errors = monitors.SelectMany(m => m.RecentFailures.Select(f => Error(f, "run")))
            .Concat(monitors.SelectMany(m => m.RecentToolFailures.Select(f => Error(f, "tool"))))
            .OrderByDescending(e => e.At)
            .Take(RecentErrorCount)
            .ToList();

        return new OpsSnapshot(now, identity.Id, silos, runs, activeRuns, errors, gateways, grainTypes, problems);

        async Task<T> Read<T>(string part, Func<Task<T>> read, T fallback)
        {
            try
            {
                return await read().ConfigureAwait(false);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                Log.OpsSnapshotPartFailed(logger, ex, part);
                lock (problems)
                {
                    problems.Add($"{part} could not be read: {ex.GetType().Name}.");
                }

                return fallback;
            }
        }
    }

    private static OpsError Error(RunActivity failure, string kind) => new(
        failure.At,
        kind,
        failure.ThreadId,
        failure.RunId,
        failure.Tool,
        failure.Error?.Code ?? "unknown",
        failure.Error?.Message ?? "",
        $"/threads/{Uri.EscapeDataString(failure.ThreadId)}/runs/{Uri.EscapeDataString(failure.RunId)}");

    /// <summary>Nearest-rank percentile of sorted samples; null without samples.</summary>
    internal static double? Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? null : Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)], 1);

    /// <summary><c>Namespace.TypeName,Assembly</c> → <c>TypeName</c>.</summary>
    private static string ShortTypeName(string grainType)
    {
        var name = grainType.Split(',')[0];
        var dot = name.LastIndexOf('.');
        return dot < 0 ? name : name[(dot + 1)..];
    }
}
