using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Conversations.Gateway.Pages;
using Conversations.Gateway.Streaming;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace Conversations.Gateway.Ops;

/// <summary>
/// The ops dashboard: <c>/ops</c> (the page, live over SSE), <c>/ops/snapshot</c> and <c>/ops/events</c> (the cluster's
/// numbers), <c>/ops/threads/{id}/events</c> (a thread's live stream for a watcher that is not counted as a
/// subscriber), and the official Orleans Dashboard under <c>/ops/orleans</c>. Every endpoint is in one route group
/// behind one gate (<see cref="OpsAccess"/>).
/// </summary>
public static class OpsApi
{
    public static IHostApplicationBuilder AddOps(this IHostApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddOptions<OpsOptions>().BindConfiguration(OpsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<GatewayIdentity>();
        builder.Services.AddSingleton<ClusterView>();
        builder.Services.AddHostedService<GatewayReporter>();
        builder.Services.AddPages();
        return builder;
    }

    /// <summary>Maps the ops endpoints; returns their group, where authorization goes.</summary>
    public static RouteGroupBuilder MapOpsApi(this IEndpointRouteBuilder app)
    {
        var ops = app.MapGroup("/ops").WithTags("Ops").AddEndpointFilter<OpsAccess>();
        ops.MapGet("/", (HttpContext context, WebAssets assets) => assets.Serve(context, "ops/index.html")).ExcludeFromDescription();
        ops.MapGet("/ops.js", (HttpContext context, WebAssets assets) => assets.Serve(context, "ops/ops.js")).ExcludeFromDescription();
        ops.MapGet("/ops.css", (HttpContext context, WebAssets assets) => assets.Serve(context, "ops/ops.css")).ExcludeFromDescription();
        ops.MapGet("/snapshot", GetSnapshotAsync).WithName("OpsSnapshot")
            .WithSummary("The cluster now: silos, runs, tokens/s, time to first token, tool calls, recent errors, gateways and their subscribers.");
        ops.MapGet("/events", StreamSnapshots).WithName("OpsEvents")
            .WithSummary("The same snapshot as an SSE stream (event 'snapshot'), every Ops:RefreshInterval.");
        ops.MapGet("/threads/{threadId}/events", WatchThreadAsync).WithName("OpsWatchThread")
            .WithSummary("A thread's events live, as a watcher the thread's subscriber counts leave out: after Last-Event-ID or ?after=N, else from the active run's start (or from now).");
        // The official dashboard's pages and API, under the same gate.
        ops.MapOrleansDashboard("/orleans").ExcludeFromDescription();
        return ops;
    }

    private static async Task<Ok<OpsSnapshot>> GetSnapshotAsync(ClusterView view, CancellationToken cancellationToken) =>
        TypedResults.Ok(await view.GetAsync(cancellationToken));

    private static ServerSentEventsStream StreamSnapshots(
        ClusterView view,
        IOptions<OpsOptions> ops,
        IOptions<StreamingOptions> streaming,
        IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken) =>
        new(SnapshotsAsync(view, ops.Value.RefreshInterval, json.Value.SerializerOptions, time, lifetime, cancellationToken), streaming.Value.HeartbeatInterval);

    private static async IAsyncEnumerable<SseItem<string>> SnapshotsAsync(
        ClusterView view, TimeSpan interval, JsonSerializerOptions json, TimeProvider time, IHostApplicationLifetime lifetime,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The stream ends when the client goes or the server stops.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        for (long id = 1; ; id++)
        {
            var snapshot = await UnlessStoppedAsync(() => view.GetAsync(stop.Token), stop.Token);
            if (snapshot is null)
            {
                yield break;
            }

            yield return new SseItem<string>(JsonSerializer.Serialize(snapshot, json), "snapshot") { EventId = id.ToString(CultureInfo.InvariantCulture) };
            if (await UnlessStoppedAsync(async () => { await Task.Delay(interval, time, stop.Token); return snapshot; }, stop.Token) is null)
            {
                yield break;
            }
        }
    }

    private static async Task<T?> UnlessStoppedAsync<T>(Func<Task<T>> work, CancellationToken stop)
        where T : class
    {
        try
        {
            return await work();
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return null;
        }
    }

    private static async Task<IResult> WatchThreadAsync(
        string threadId,
        HttpRequest request,
        IGrainFactory grains,
        ThreadEventHub hub,
        IOptions<StreamingOptions> streaming,
        IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken,
        string? after = null)
    {
        var cursor = EventCursor.From(request, after);
        long afterSequence = 0;
        if (cursor is { } given && !EventCursor.TryParse(given.Raw, out afterSequence))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [given.Field] = [$"{given.Field} must be a non-negative event sequence number."] });
        }

        var thread = await grains.GetGrain<IThreadGrain>(threadId).GetAsync(cancellationToken);
        if (thread is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"No thread has the id '{threadId}'.");
        }

        if (cursor is { } resumed && EventCursor.BeyondEnd(thread, afterSequence) is { } lastSequence)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                detail: $"{resumed.Field} {afterSequence} is past the thread's last event ({lastSequence}).",
                extensions: new Dictionary<string, object?> { ["lastSequence"] = lastSequence, ["errors"] = new Dictionary<string, string[]> { [resumed.Field] = [$"{resumed.Field} must be at most {lastSequence}."] } });
        }

        if (cursor is null)
        {
            // No cursor: the active run from its start (the dashboard shows it whole), else live from now.
            afterSequence = thread.LastSequence;
            if (thread.ActiveRunId is { } runId && await grains.GetGrain<IThreadGrain>(threadId).GetRunAsync(runId, cancellationToken) is { StartSequence: > 0 } run)
            {
                afterSequence = run.StartSequence - 1;
            }
        }

        var events = UntilStopped(hub.WatchAsync(threadId, afterSequence, cancellationToken), lifetime);
        return new ServerSentEventsStream(events.ToSseItemsAsync(cancellationToken), streaming.Value.HeartbeatInterval);
    }

    private static async IAsyncEnumerable<ThreadEvent> UntilStopped(IAsyncEnumerable<ThreadEvent> events, IHostApplicationLifetime lifetime)
    {
        var stopping = lifetime.ApplicationStopping;
        await using var enumerator = events.GetAsyncEnumerator(stopping);
        while (true)
        {
            bool moved;
            try
            {
                moved = await enumerator.MoveNextAsync();
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                yield break;
            }

            if (!moved)
            {
                yield break;
            }

            yield return enumerator.Current;
        }
    }
}
