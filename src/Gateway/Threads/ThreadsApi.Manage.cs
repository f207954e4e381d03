using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conversations.Gateway.Auth;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Conversations.Gateway.Threads;

/// <summary>A caller's own threads: the listing (<c>GET /threads</c>, <c>POST /threads/search</c>), metadata edits and erasure.</summary>
public static partial class ThreadsApi
{
    /// <summary>The query parameters of a listing that filter by metadata: <c>metadata.{key}={value}</c>.</summary>
    public const string MetadataFilterPrefix = "metadata.";

    private static void MapThreadManagement(RouteGroupBuilder threads)
    {
        threads.MapGet("/", ListThreadsAsync).WithName("ListThreads")
            .WithSummary("List the caller's threads, last updated first, paged with limit and after (a page's nextCursor); metadata.{key}={value} filters.");
        threads.MapPost("/search", SearchThreadsAsync).WithName("SearchThreads")
            .WithSummary("LangGraph's thread search: the caller's threads whose metadata holds every given pair, last updated first, with limit and offset.");
        threads.MapPatch("/{threadId}", UpdateThreadAsync).WithName("UpdateThread")
            .WithSummary("Change a thread's metadata: a JSON merge patch of metadata (a key set to null is removed).")
            .Accepts<UpdateThreadRequest>("application/merge-patch+json", "application/json");
        threads.MapDelete("/{threadId}", DeleteThreadAsync).WithName("DeleteThread")
            .WithSummary("Erase a thread everywhere in the cluster (an active run is cancelled first): its messages, runs, events and state. 204, then 404.");
    }

    private static async Task<Results<Ok<ThreadListResponse>, ValidationProblem, ProblemHttpResult>> ListThreadsAsync(
        HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken, string? limit = null, string? after = null, string? owner = null)
    {
        var errors = new Dictionary<string, string[]>();
        var pageSize = DefaultPageSize;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out pageSize) || pageSize is < 1 or > MaxPageSize))
        {
            errors["limit"] = [$"limit must be an integer between 1 and {MaxPageSize}."];
        }

        ThreadListPosition? position = null;
        if (after is not null && !TryReadCursor(after, out position))
        {
            errors["after"] = ["after must be a cursor a previous page gave as nextCursor."];
        }

        var filter = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, values) in httpContext.Request.Query)
        {
            if (!name.StartsWith(MetadataFilterPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var key = name[MetadataFilterPrefix.Length..];
            if (key.Length is 0 or > 64 || values.Count != 1 || values[0] is not { Length: <= 512 } value)
            {
                errors[name] = [$"{name} must be given once, with a key of 1-64 characters and a value of at most 512 characters."];
                continue;
            }

            filter[key] = value;
        }

        if (filter.Count > MaxMetadataPairs)
        {
            errors["metadata"] = [$"A listing filters by at most {MaxMetadataPairs} metadata pairs."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (ListingScope(Caller.Of(httpContext), owner) is not { } query)
        {
            return OtherOwnersForbidden();
        }

        var page = await grains.GetGrain<IThreadDirectoryGrain>(IThreadDirectoryGrain.Key).ListAsync(
            query with { Limit = pageSize, Metadata = filter, After = position }, cancellationToken);
        var next = page.HasMore && page.Data.Count > 0 ? WriteCursor(page.Data[^1]) : null;
        return TypedResults.Ok(new ThreadListResponse(page.Data, next, page.HasMore));
    }

    private static async Task<Results<Ok<IReadOnlyList<ThreadSummary>>, ValidationProblem, ProblemHttpResult>> SearchThreadsAsync(
        ThreadSearchRequest? request, HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken)
    {
        request ??= new ThreadSearchRequest(null, null, null, null);
        var errors = new Dictionary<string, string[]>();
        ValidateMetadata(request.Metadata, errors);
        if (request.Limit is < 1 or > MaxPageSize)
        {
            errors["limit"] = [$"limit must be an integer between 1 and {MaxPageSize}."];
        }

        if (request.Offset is < 0 or > 100_000)
        {
            errors["offset"] = ["offset must be an integer between 0 and 100000."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (ListingScope(Caller.Of(httpContext), request.Owner) is not { } query)
        {
            return OtherOwnersForbidden();
        }

        var page = await grains.GetGrain<IThreadDirectoryGrain>(IThreadDirectoryGrain.Key).ListAsync(
            query with { Limit = request.Limit ?? 10, Offset = request.Offset ?? 0, Metadata = request.Metadata ?? [] }, cancellationToken);
        return TypedResults.Ok(page.Data);
    }

    /// <summary>
    /// Whose threads a listing shows: a caller who is not an admin only their own (an <paramref name="owner"/> naming
    /// anyone else is refused: null); an admin (every caller of an open server) every thread, or one owner's.
    /// </summary>
    private static ThreadListQuery? ListingScope(Caller caller, string? owner) =>
        caller.IsAdmin
            ? new ThreadListQuery(DefaultPageSize) { AnyOwner = owner is null, Owner = owner }
            : owner is null || owner == caller.Owner ? new ThreadListQuery(DefaultPageSize) { Owner = caller.Owner } : null;

    private static ProblemHttpResult OtherOwnersForbidden() =>
        TypedResults.Problem("Only admins list other owners' threads; leave owner out to list your own.", statusCode: StatusCodes.Status403Forbidden, title: "Forbidden");

    private static async Task<IResult> UpdateThreadAsync(string threadId, HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (!httpContext.Request.HasJsonContentType())
        {
            return TypedResults.Problem(
                "The body must be JSON: Content-Type application/merge-patch+json (or application/json).",
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "Unsupported media type");
        }

        JsonObject body;
        try
        {
            if (await JsonNode.ParseAsync(httpContext.Request.Body, cancellationToken: cancellationToken) is not JsonObject parsed)
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The request body must be a JSON object, such as {\"metadata\": {\"key\": \"value\"}}."] });
            }

            // Reading every member makes a field named twice fail here.
            _ = parsed.Count;
            body = parsed;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The request body is not valid JSON (or names a field twice)."] });
        }

        var errors = new Dictionary<string, string[]>();
        foreach (var (name, _) in body)
        {
            if (name != "metadata")
            {
                errors[name] = [$"{name} cannot be changed: a thread's metadata is all a PATCH changes."];
            }
        }

        var grain = grains.GetGrain<IThreadGrain>(threadId);
        var thread = await grain.GetAsync(cancellationToken);
        if (thread is null || !Caller.Of(httpContext).MayAccess(thread))
        {
            return ThreadNotFound(threadId);
        }

        var patch = new Dictionary<string, string?>(StringComparer.Ordinal);
        switch (body["metadata"])
        {
            case null when body.ContainsKey("metadata"):
                // "metadata": null removes the member, as a merge patch does: every key goes.
                foreach (var key in thread.Metadata.Keys)
                {
                    patch[key] = null;
                }

                break;
            case null:
                break;
            case JsonObject metadata:
                foreach (var (key, node) in metadata)
                {
                    if (node is null)
                    {
                        patch[key] = null;
                    }
                    else if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue(out string? text)
                        && key.Length is > 0 and <= 64 && text.Length <= 512)
                    {
                        patch[key] = text;
                    }
                    else
                    {
                        errors[$"metadata.{key}"] = ["metadata keys must be 1-64 characters and values strings of at most 512 characters (null removes the key)."];
                    }
                }

                break;
            default:
                errors["metadata"] = ["metadata must be an object of string values (null removes a key), or null to remove every key."];
                break;
        }

        var pairs = thread.Metadata.Keys.Union(patch.Keys).Count(key => patch.TryGetValue(key, out var value) ? value is not null : true);
        if (pairs > MaxMetadataPairs)
        {
            errors["metadata"] = [$"metadata holds at most {MaxMetadataPairs} pairs; with this patch the thread would have {pairs}."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var updated = patch.Count == 0 ? thread : await grain.UpdateMetadataAsync(patch, cancellationToken);
        return updated is null ? ThreadNotFound(threadId) : TypedResults.Ok(updated);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteThreadAsync(
        string threadId, HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var grain = grains.GetGrain<IThreadGrain>(threadId);
        var thread = await grain.GetAsync(cancellationToken);
        if (thread is null || !Caller.Of(httpContext).MayAccess(thread))
        {
            return ThreadNotFound(threadId);
        }

        return await grain.DeleteAsync(cancellationToken) ? TypedResults.NoContent() : ThreadNotFound(threadId);
    }

    /// <summary>A listing's cursor: the last thread of a page (its stored update time and id), opaque to clients.</summary>
    private static string WriteCursor(ThreadSummary last) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{last.UpdatedAt.UtcTicks}:{last.Id}")));

    private static bool TryReadCursor(string cursor, out ThreadListPosition? position)
    {
        position = null;
        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && colon < text.Length - 1
                && long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                && ticks <= DateTimeOffset.MaxValue.UtcTicks)
            {
                position = new ThreadListPosition(new DateTimeOffset(ticks, TimeSpan.Zero), text[(colon + 1)..]);
                return true;
            }
        }
        catch (FormatException)
        {
            // Not base64url.
        }

        return false;
    }
}

/// <summary>A page of <c>GET /threads</c>: the threads, last updated first.</summary>
/// <param name="Data">The threads of the page.</param>
/// <param name="NextCursor">The <c>after</c> of the next page; null on the last page.</param>
/// <param name="HasMore">Whether more threads follow.</param>
public sealed record ThreadListResponse(IReadOnlyList<ThreadSummary> Data, string? NextCursor, bool HasMore);

/// <summary>Body of <c>POST /threads/search</c> (LangGraph's thread search).</summary>
/// <param name="Metadata">Only threads whose metadata holds every one of these pairs.</param>
/// <param name="Limit">At most this many threads (1-100, 10 by default).</param>
/// <param name="Offset">Skip this many threads first.</param>
/// <param name="Owner">An admin's filter: one owner's threads.</param>
public sealed record ThreadSearchRequest(Dictionary<string, string>? Metadata, int? Limit, int? Offset, string? Owner);

/// <summary>Body of <c>PATCH /threads/{id}</c>, as the OpenAPI document shows it (the handler reads it as a merge patch).</summary>
/// <param name="Metadata">Keys to set; a key set to null is removed; null removes every key.</param>
public sealed record UpdateThreadRequest(Dictionary<string, string?>? Metadata);
