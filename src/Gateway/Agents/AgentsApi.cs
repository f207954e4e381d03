using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Catalog;
using Conversations.Grains.Abstractions.Agents;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;

namespace Conversations.Gateway.Agents;

/// <summary>
/// Agents as managed resources, stored in the cluster (the agent catalog grain): <c>POST /agents</c> (create, the name
/// in the body), <c>GET</c>, <c>PUT</c> (replace), <c>PATCH</c> (JSON merge patch) and <c>DELETE</c> on
/// <c>/agents/{name}</c>, and <c>GET /agents?format=native</c> for the list (plain <c>GET /agents</c> stays seed 003's
/// shape, as does its <c>POST /agents/{name}</c>). Every answer carries the agent's version as its <c>ETag</c>;
/// <c>If-Match</c> makes a write conditional (412 when the agent has moved on), <c>If-None-Match</c> a read (304).
/// </summary>
public static class AgentsApi
{
    private const int PatchAttempts = 3;

    public static IEndpointRouteBuilder MapAgentsApi(this IEndpointRouteBuilder app)
    {
        var agents = app.MapGroup("/agents").WithTags("Agents");
        // Reads are every caller's (agents hold no secrets); writes are admins'.
        agents.MapPost("/", CreateAsync).WithName("CreateAgent")
            .RequireAuthorization(Caller.AdminPolicy)
            .WithSummary("Create an agent (name in the body): 201 with Location and ETag; 409 when an agent of the name exists; 400 naming each invalid field.")
            .Accepts<AgentRequest>("application/json")
            .Produces<AgentResponse>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict);
        agents.MapGet("/{agent_name}", GetAsync).WithName("GetAgent")
            .WithSummary("Get an agent with its version (ETag); 404 when there is none or it was deleted.")
            .Produces<AgentResponse>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        agents.MapPut("/{agent_name}", ReplaceAsync).WithName("ReplaceAgent")
            .RequireAuthorization(Caller.AdminPolicy)
            .WithSummary("Replace an agent: fields left out take their defaults; If-Match makes it conditional (412).")
            .Accepts<AgentRequest>("application/json")
            .Produces<AgentResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        agents.MapPatch("/{agent_name}", PatchAsync).WithName("PatchAgent")
            .RequireAuthorization(Caller.AdminPolicy)
            .WithSummary("Change some of an agent's fields (JSON merge patch: a field set to null takes its default); If-Match makes it conditional (412).")
            .Accepts<AgentRequest>("application/merge-patch+json", "application/json")
            .Produces<AgentResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        agents.MapDelete("/{agent_name}", DeleteAsync).WithName("DeleteAgent")
            .RequireAuthorization(Caller.AdminPolicy)
            .WithSummary("Delete an agent (a configured one stays hidden until it is created again): 204; 404 when there is none; 409 for default.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        return app;
    }

    /// <summary>
    /// <c>GET /agents?format=…</c> (seed 003's <c>GET /agents</c> answers when there is no <c>format</c>): <c>native</c>
    /// lists every agent in the native shape; any other value is a 400 naming <c>format</c>.
    /// </summary>
    public static Task<IResult> ListFormatAsync(string format, SiloCatalog silo, CancellationToken cancellationToken) => format switch
    {
        "native" => ListAsync(silo, cancellationToken),
        _ => Task.FromResult(Invalid(new Dictionary<string, string[]> { ["format"] = ["format must be 'native' (the native agents' shape), or left out for seed 003's."] })),
    };

    /// <summary>Every agent in the native shape, ordered by name.</summary>
    public static async Task<IResult> ListAsync(SiloCatalog silo, CancellationToken cancellationToken)
    {
        var agents = await silo.Agents.ListResourcesAsync(cancellationToken);
        return TypedResults.Json(new AgentList([.. agents.Select(AgentResponse.From)]), ResourceJson.Options);
    }

    private static async Task<IResult> CreateAsync(HttpContext httpContext, SiloCatalog silo, CancellationToken cancellationToken)
    {
        var (body, readError) = await ReadBodyAsync(httpContext.Request, cancellationToken);
        if (body is null)
        {
            return readError!;
        }

        var errors = new Dictionary<string, string[]>();
        AgentDocument.CheckFields(body, errors);
        var name = Name(body["name"]);
        if (name is null)
        {
            errors["name"] = [body["name"] is null ? "name is required: 1-64 characters: letters, digits, '_', '-' or '.'." : AgentDocument.NameRule];
        }

        var catalog = await silo.GetModelsAsync(cancellationToken);
        // Every field is checked, whether or not the name is valid.
        var agent = AgentDocument.Read(AgentDocument.Writable(body), name ?? AgentDefinition.DefaultName, catalog, currentModel: null, errors);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        var result = await silo.Agents.CreateAsync(agent!, cancellationToken);
        switch (result)
        {
            case AgentWriteResult.Saved saved:
                httpContext.Response.Headers.Location = $"/agents/{Uri.EscapeDataString(saved.Agent.Name)}";
                return Resource(httpContext, saved.Agent, StatusCodes.Status201Created);
            case AgentWriteResult.Invalid invalid:
                return Invalid(invalid.Errors);
            case AgentWriteResult.AlreadyExists exists:
                return Problem(
                    StatusCodes.Status409Conflict, "Agent exists", "agent_exists",
                    $"An agent named '{exists.Current.Name}' exists; replace it with PUT /agents/{exists.Current.Name} or change it with PATCH.",
                    exists.Current);
            default:
                throw Unexpected(result);
        }
    }

    private static async Task<IResult> GetAsync(
        [FromRoute(Name = "agent_name")] string name, HttpContext httpContext, SiloCatalog silo, CancellationToken cancellationToken)
    {
        if (!AgentDocument.IsValidName(name))
        {
            return InvalidName();
        }

        var agent = await silo.Agents.GetResourceAsync(name, cancellationToken);
        if (agent is null)
        {
            return NotFound(name);
        }

        if (httpContext.Request.Headers.IfNoneMatch.Count > 0
            && EntityTagHeaderValue.TryParseList(httpContext.Request.Headers.IfNoneMatch, out var tags)
            && tags.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || tag.Tag.Equals(ETag(agent))))
        {
            httpContext.Response.Headers.ETag = ETag(agent);
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return Resource(httpContext, agent, StatusCodes.Status200OK);
    }

    private static async Task<IResult> ReplaceAsync(
        [FromRoute(Name = "agent_name")] string name, HttpContext httpContext, SiloCatalog silo, CancellationToken cancellationToken)
    {
        if (!AgentDocument.IsValidName(name))
        {
            return InvalidName();
        }

        var (body, readError) = await ReadBodyAsync(httpContext.Request, cancellationToken);
        if (body is null)
        {
            return readError!;
        }

        var errors = new Dictionary<string, string[]>();
        AgentDocument.CheckFields(body, errors);
        CheckSameName(body, name, errors);
        var current = await silo.Agents.GetResourceAsync(name, cancellationToken);
        if (current is null)
        {
            return errors.Count > 0 ? Invalid(errors) : NotFound(name);
        }

        var catalog = await silo.GetModelsAsync(cancellationToken);
        var agent = AgentDocument.Read(AgentDocument.Writable(body), name, catalog, current.Definition.Model, errors);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        var (expected, failed) = IfMatch(httpContext, current);
        if (failed is not null)
        {
            return failed;
        }

        return Written(httpContext, await silo.Agents.ReplaceAsync(agent!, expected, cancellationToken));
    }

    private static async Task<IResult> PatchAsync(
        [FromRoute(Name = "agent_name")] string name, HttpContext httpContext, SiloCatalog silo, CancellationToken cancellationToken)
    {
        if (!AgentDocument.IsValidName(name))
        {
            return InvalidName();
        }

        var (patch, readError) = await ReadBodyAsync(httpContext.Request, cancellationToken);
        if (patch is null)
        {
            return readError!;
        }

        var errors = new Dictionary<string, string[]>();
        AgentDocument.CheckFields(patch, errors);
        if (patch.ContainsKey("name") && patch["name"] is null)
        {
            errors["name"] = ["name cannot be removed; agents cannot be renamed."];
        }
        else
        {
            CheckSameName(patch, name, errors);
        }

        var catalog = await silo.GetModelsAsync(cancellationToken);
        var writable = AgentDocument.Writable(patch);
        for (var attempt = 1; ; attempt++)
        {
            var current = await silo.Agents.GetResourceAsync(name, cancellationToken);
            if (current is null)
            {
                return errors.Count > 0 ? Invalid(errors) : NotFound(name);
            }

            var merged = (JsonObject)AgentDocument.MergePatch(AgentDocument.ToJson(current.Definition), writable)!;
            merged["name"] = name;
            var agent = AgentDocument.Read(merged, name, catalog, current.Definition.Model, errors);
            if (errors.Count > 0)
            {
                return Invalid(errors);
            }

            var (expected, failed) = IfMatch(httpContext, current);
            if (failed is not null)
            {
                return failed;
            }

            // The patch applies to the version just read: a write in between is a mismatch, and the patch is applied
            // again to the newer version (unless the client asked for a version of its own with If-Match).
            var result = await silo.Agents.ReplaceAsync(agent!, current.Version, cancellationToken);
            if (result is AgentWriteResult.VersionMismatch && expected is null && attempt < PatchAttempts)
            {
                continue;
            }

            return Written(httpContext, result);
        }
    }

    private static async Task<IResult> DeleteAsync(
        [FromRoute(Name = "agent_name")] string name, HttpContext httpContext, SiloCatalog silo, CancellationToken cancellationToken)
    {
        if (!AgentDocument.IsValidName(name))
        {
            return InvalidName();
        }

        long? expected = null;
        if (httpContext.Request.Headers.IfMatch.Count > 0)
        {
            var current = await silo.Agents.GetResourceAsync(name, cancellationToken);
            if (current is null)
            {
                return NotFound(name);
            }

            (expected, var failed) = IfMatch(httpContext, current);
            if (failed is not null)
            {
                return failed;
            }
        }

        var result = await silo.Agents.DeleteAsync(name, expected, cancellationToken);
        return result switch
        {
            AgentWriteResult.Deleted => TypedResults.NoContent(),
            _ => Written(httpContext, result),
        };
    }

    /// <summary>The answer to a replace or a delete that did not succeed, or the saved agent.</summary>
    private static IResult Written(HttpContext httpContext, AgentWriteResult result) => result switch
    {
        AgentWriteResult.Saved saved => Resource(httpContext, saved.Agent, StatusCodes.Status200OK),
        AgentWriteResult.NotFound notFound => NotFound(notFound.Name),
        AgentWriteResult.Invalid invalid => Invalid(invalid.Errors),
        AgentWriteResult.VersionMismatch mismatch => PreconditionFailed(httpContext, mismatch.Current),
        AgentWriteResult.Protected protectedAgent => Problem(
            StatusCodes.Status409Conflict, "Agent cannot be deleted", "agent_protected", $"The agent '{protectedAgent.Name}' cannot be deleted. {protectedAgent.Reason}", null),
        _ => throw Unexpected(result),
    };

    /// <summary>
    /// <c>If-Match</c> against <paramref name="current"/>: no header, no condition (null); a list naming its ETag (or
    /// <c>*</c>), its version; anything else, a 412.
    /// </summary>
    private static (long? Expected, IResult? Failed) IfMatch(HttpContext httpContext, AgentResource current)
    {
        var header = httpContext.Request.Headers.IfMatch;
        if (header.Count == 0)
        {
            return (null, null);
        }

        var matches = EntityTagHeaderValue.TryParseList(header, out var tags)
            && tags.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || (!tag.IsWeak && tag.Tag.Equals(ETag(current))));
        return matches ? (current.Version, null) : (null, PreconditionFailed(httpContext, current));
    }

    private static IResult Resource(HttpContext httpContext, AgentResource agent, int statusCode)
    {
        httpContext.Response.Headers.ETag = ETag(agent);
        return TypedResults.Json(AgentResponse.From(agent), ResourceJson.Options, statusCode: statusCode);
    }

    private static string ETag(AgentResource agent) => string.Create(CultureInfo.InvariantCulture, $"\"{agent.Version}\"");

    private static IResult PreconditionFailed(HttpContext httpContext, AgentResource current)
    {
        httpContext.Response.Headers.ETag = ETag(current);
        return Problem(
            StatusCodes.Status412PreconditionFailed, "Precondition failed", "version_mismatch",
            $"The agent '{current.Name}' is at version {current.Version} (ETag {ETag(current)}), not the one If-Match names; read it again and retry.",
            current);
    }

    private static IResult NotFound(string name) =>
        Problem(StatusCodes.Status404NotFound, "Agent not found", "agent_not_found", $"No agent is named '{name}'.", null);

    private static IResult Problem(int statusCode, string title, string code, string detail, AgentResource? current)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = code };
        if (current is not null)
        {
            extensions["version"] = current.Version;
        }

        return TypedResults.Problem(detail, statusCode: statusCode, title: title, extensions: extensions);
    }

    private static IResult InvalidName() => Invalid(new Dictionary<string, string[]> { ["name"] = [AgentDocument.NameRule] });

    private static IResult Invalid(Dictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, detail: string.Join(" ", errors.Values.SelectMany(messages => messages)));

    private static void CheckSameName(JsonObject body, string name, Dictionary<string, string[]> errors)
    {
        if (body.ContainsKey("name") && Name(body["name"]) != name)
        {
            errors["name"] = [$"name must be the path's, '{name}' (or left out); agents cannot be renamed."];
        }
    }

    /// <summary>The node's string when it is a valid agent name, else null.</summary>
    private static string? Name(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue(out string? name) && AgentDocument.IsValidName(name)
            ? name
            : null;

    /// <summary>The body as a JSON object, or the error to answer: 415 when it is not JSON, 400 when it is not an object.</summary>
    private static async Task<(JsonObject? Body, IResult? Error)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
        {
            return (null, TypedResults.Problem(
                "The body must be JSON: Content-Type application/json (or application/merge-patch+json for PATCH).",
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "Unsupported media type"));
        }

        try
        {
            var node = await JsonNode.ParseAsync(request.Body, cancellationToken: cancellationToken);
            if (node is not JsonObject body)
            {
                return (null, Invalid(new Dictionary<string, string[]> { ["body"] = ["body must be a JSON object with the agent's fields."] }));
            }

            // Reading every member makes a field named twice fail here.
            _ = body.Count;
            return (body, null);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            return (null, Invalid(new Dictionary<string, string[]> { ["body"] = ["body is not valid JSON (or names a field twice)."] }));
        }
    }

    private static InvalidOperationException Unexpected(AgentWriteResult result) => new($"The agent catalog answered {result.GetType().Name} unexpectedly.");
}
