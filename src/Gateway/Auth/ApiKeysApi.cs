using System.Text.RegularExpressions;
using Conversations.Grains.Abstractions.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Conversations.Gateway.Auth;

/// <summary>
/// API key management, for admins: <c>POST /admin/api-keys</c> issues a key and shows its secret this once;
/// <c>GET /admin/api-keys</c> lists keys (never a secret or a hash); <c>DELETE /admin/api-keys/{id}</c> revokes one,
/// effective at once on every gateway.
/// </summary>
public static partial class ApiKeysApi
{
    public const int MaxNameLength = 128;

    /// <summary>The roles a key may have.</summary>
    public static readonly IReadOnlyList<string> Roles = [Caller.AdminRole];

    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/admin/api-keys").WithTags("Admin").RequireAuthorization(Caller.AdminPolicy);
        keys.MapPost("/", IssueAsync).WithName("IssueApiKey")
            .WithSummary("Issue an API key (name, roles): 201 with the key, shown this once; it authenticates as 'Authorization: Bearer <key>' or 'X-Api-Key'.");
        keys.MapGet("/", ListAsync).WithName("ListApiKeys").WithSummary("Every API key, revoked ones with revokedAt; never a secret or a hash.");
        keys.MapDelete("/{keyId}", RevokeAsync).WithName("RevokeApiKey").WithSummary("Revoke an API key (idempotent): 204; requests with it get 401 from then on.");
        return app;
    }

    private static async Task<Results<Created<IssuedApiKey>, ValidationProblem>> IssueAsync(
        IssueApiKeyRequest? request, HttpContext context, IGrainFactory grains, ILogger<ApiKeys> logger, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (request?.Name is not { } name || string.IsNullOrWhiteSpace(name) || name.Length > MaxNameLength || name.Any(char.IsControl))
        {
            errors["name"] = [$"name is required: 1-{MaxNameLength} characters saying who or what uses the key."];
        }

        var roles = request?.Roles ?? [];
        for (var i = 0; i < roles.Count; i++)
        {
            if (roles[i] is not { } role || !Roles.Contains(role, StringComparer.Ordinal))
            {
                errors[$"roles[{i}]"] = [$"roles[{i}] must be one of: {string.Join(", ", Roles)}."];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var issuedBy = Caller.Of(context).Owner;
        var registry = grains.GetGrain<IApiKeyRegistryGrain>(IApiKeyRegistryGrain.Key);
        while (true)
        {
            var (id, key) = ApiKeys.Generate();
            var record = await registry.IssueAsync(
                new IssueApiKey(id, request!.Name!.Trim(), [.. roles.Distinct(StringComparer.Ordinal)!], ApiKeys.Hash(key), issuedBy), cancellationToken);
            if (record is null)
            {
                // 64 random bits met an existing id: draw again.
                continue;
            }

            Log.ApiKeyIssued(logger, record.Id, string.Join(",", record.Roles), issuedBy ?? "an open server's caller");
            return TypedResults.Created($"/admin/api-keys/{record.Id}", IssuedApiKey.From(record, key));
        }
    }

    private static async Task<Ok<ApiKeyList>> ListAsync(IGrainFactory grains, CancellationToken cancellationToken)
    {
        var keys = await grains.GetGrain<IApiKeyRegistryGrain>(IApiKeyRegistryGrain.Key).ListAsync(cancellationToken);
        return TypedResults.Ok(new ApiKeyList([.. keys.Select(ApiKeyInfo.From)]));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        string keyId, HttpContext context, IGrainFactory grains, ILogger<ApiKeys> logger, CancellationToken cancellationToken)
    {
        var revoked = KeyIdPattern().IsMatch(keyId)
            ? await grains.GetGrain<IApiKeyRegistryGrain>(IApiKeyRegistryGrain.Key).RevokeAsync(keyId, cancellationToken)
            : null;
        if (revoked is null)
        {
            return TypedResults.Problem(
                $"No API key has id '{keyId}'{(keyId.StartsWith("config-", StringComparison.Ordinal) ? " (keys of Auth:AdminApiKeys are removed from configuration)" : "")}.",
                statusCode: StatusCodes.Status404NotFound,
                title: "API key not found");
        }

        Log.ApiKeyRevoked(logger, revoked.Id, Caller.Of(context).Owner ?? "an open server's caller");
        return TypedResults.NoContent();
    }

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex KeyIdPattern();
}

/// <summary>A key to issue.</summary>
/// <param name="Name">Who or what uses the key.</param>
/// <param name="Roles">Its roles: <c>admin</c> manages agents, models, keys and sees <c>/ops</c>; none for a plain caller.</param>
public sealed record IssueApiKeyRequest(string? Name, IReadOnlyList<string?>? Roles);

/// <summary>An API key as listed: no secret, no hash.</summary>
public sealed record ApiKeyInfo(string Id, string Name, IReadOnlyList<string> Roles, DateTimeOffset CreatedAt, string? CreatedBy, DateTimeOffset? RevokedAt)
{
    public static ApiKeyInfo From(ApiKeyRecord record) => new(record.Id, record.Name, record.Roles, record.CreatedAt, record.CreatedBy, record.RevokedAt);
}

/// <summary>A key just issued, with its secret <paramref name="Key"/>: shown this once, stored nowhere.</summary>
public sealed record IssuedApiKey(string Id, string Name, IReadOnlyList<string> Roles, DateTimeOffset CreatedAt, string? CreatedBy, string Key)
{
    public static IssuedApiKey From(ApiKeyRecord record, string key) => new(record.Id, record.Name, record.Roles, record.CreatedAt, record.CreatedBy, key);
}

/// <summary>Every API key.</summary>
public sealed record ApiKeyList(IReadOnlyList<ApiKeyInfo> Data);
