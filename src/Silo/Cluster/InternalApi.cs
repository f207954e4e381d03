using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.Client;
using Conversations.Silo.Runtime;
using Conversations.Silo.Streams.InProcess;
using Conversations.Silo.Streams.Sse;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Conversations.Silo.Cluster;

/// <summary>
/// A silo's internal endpoints, used by gateways: grain calls, the live event stream of the threads it holds, and
/// health. Every request but health carries the cluster key.
/// </summary>
public static class InternalApi
{
    public static IEndpointRouteBuilder MapInternalApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/internal/health", (ActivationCatalog catalog, IOptions<ClusterOptions> options) =>
            TypedResults.Ok(new SiloHealth(options.Value.SiloId, catalog.Count)));
        var threads = app.MapGroup("/internal/threads/{threadId}").AddEndpointFilter(RequireClusterKeyAsync);
        threads.MapPost("/calls/{method}", CallAsync);
        threads.MapGet("/events", StreamEventsAsync);
        return app;
    }

    /// <summary>Health of a silo.</summary>
    public sealed record SiloHealth(string SiloId, int Activations);

    private static async Task<IResult> CallAsync(
        string threadId, string method, HttpRequest request, IGrainFactory grains, ISiloDirectory silos, IOptions<ClusterOptions> options, CancellationToken cancellationToken)
    {
        var grain = grains.GetGrain<IThreadGrain>(threadId);
        try
        {
            return method switch
            {
                ClusterProtocol.Methods.Create => Json(await grain.CreateAsync(await ReadAsync<CreateThread>(request, cancellationToken), cancellationToken)),
                ClusterProtocol.Methods.Get => Json(await grain.GetAsync(cancellationToken)),
                ClusterProtocol.Methods.Messages => Json(await grain.GetMessagesAsync(await ReadAsync<MessagePageRequest>(request, cancellationToken), cancellationToken)),
                ClusterProtocol.Methods.Send => Json(await grain.SendMessageAsync(await ReadAsync<SendMessage>(request, cancellationToken), cancellationToken)),
                ClusterProtocol.Methods.Append => Json(await grain.AppendMessagesAsync((await ReadAsync<AppendMessagesCall>(request, cancellationToken)).Messages, cancellationToken)),
                ClusterProtocol.Methods.Cancel => Json(await grain.CancelRunAsync((await ReadAsync<RunIdCall>(request, cancellationToken)).RunId, cancellationToken)),
                ClusterProtocol.Methods.Run => Json(await grain.GetRunAsync((await ReadAsync<RunIdCall>(request, cancellationToken)).RunId, cancellationToken)),
                _ => TypedResults.Problem($"No grain method '{method}'.", statusCode: StatusCodes.Status404NotFound),
            };
        }
        catch (GrainOwnedElsewhereException owned)
        {
            return await RedirectAsync(owned.OwnerSiloId, silos, options.Value, cancellationToken);
        }
        catch (JsonException ex)
        {
            return TypedResults.Problem($"The body of '{method}' is not valid: {ex.Message}", statusCode: StatusCodes.Status400BadRequest);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            return TypedResults.Problem("The cluster database is unavailable.", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static async Task<IResult> StreamEventsAsync(
        string threadId, ActivationCatalog catalog, InProcessStreamHub streams, IThreadLeaseStore leases, ISiloDirectory silos,
        IOptions<ClusterOptions> options, CancellationToken cancellationToken, long after = 0)
    {
        if (catalog.GetDeactivation<IThreadGrain>(threadId) is null)
        {
            var owner = await leases.GetOwnerAsync(threadId, cancellationToken);
            return owner is not null && owner.SiloId != options.Value.SiloId
                ? await RedirectAsync(owner.SiloId, silos, options.Value, cancellationToken)
                : TypedResults.Json(new ThreadNotActive(false), ContractJson.Options, statusCode: StatusCodes.Status404NotFound);
        }

        // Live while this silo produces the thread's events; then the stream ends and the gateway looks again.
        var items = streams.SubscribeWhileProducingAsync(threadId, after, cancellationToken).ToSseItemsAsync(cancellationToken);
        return new ServerSentEventsStream(items, TimeSpan.FromSeconds(15));
    }

    private static async Task<IResult> RedirectAsync(string ownerSiloId, ISiloDirectory silos, ClusterOptions options, CancellationToken cancellationToken)
    {
        var active = await silos.ListActiveAsync(options.SiloTimeout, cancellationToken);
        var address = active.FirstOrDefault(s => s.SiloId == ownerSiloId)?.Address;
        return TypedResults.Json(new OwnerRedirect(ownerSiloId, address ?? string.Empty), ContractJson.Options, statusCode: StatusCodes.Status421MisdirectedRequest);
    }

    private static IResult Json<T>(T value) => TypedResults.Json(value, ContractJson.Options);

    private static async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken) =>
        await JsonSerializer.DeserializeAsync<T>(request.Body, ContractJson.Options, cancellationToken)
        ?? throw new JsonException("The body is empty.");

    private static async ValueTask<object?> RequireClusterKeyAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var expected = http.RequestServices.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterKey;
        var given = http.Request.Headers[ClusterProtocol.ClusterKeyHeader].ToString();
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected)))
        {
            return TypedResults.Problem("A valid cluster key is required.", statusCode: StatusCodes.Status401Unauthorized);
        }

        return await next(context);
    }
}
