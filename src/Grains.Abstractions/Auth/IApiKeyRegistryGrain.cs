using Orleans.Concurrency;

namespace Conversations.Grains.Abstractions.Auth;

/// <summary>
/// The cluster's API keys: their names, roles and the SHA-256 hashes of their secrets (never the secrets). One grain,
/// key <see cref="Key"/>, stored, so every gateway checks a key against the same set and a revocation holds at once
/// everywhere. Gateways hash a presented secret and ask <see cref="VerifyAsync"/>; the secret never leaves the gateway.
/// </summary>
[Alias("conv.IApiKeyRegistryGrain")]
public interface IApiKeyRegistryGrain : IGrainWithStringKey
{
    /// <summary>The key of the one registry.</summary>
    const string Key = "api-keys";

    /// <summary>Stores a new key; null when a key with this id exists already (ids are random: the caller draws another).</summary>
    [Alias("Issue")]
    Task<ApiKeyRecord?> IssueAsync(IssueApiKey command, CancellationToken cancellationToken = default);

    /// <summary>Every key, revoked ones included, oldest first. Records carry no hash.</summary>
    [Alias("List"), ReadOnly]
    Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The key <paramref name="id"/> when it exists, is not revoked and its secret hashes to <paramref name="secretHash"/>
    /// (compared in constant time); null otherwise.
    /// </summary>
    [Alias("Verify"), ReadOnly]
    Task<ApiKeyRecord?> VerifyAsync(string id, byte[] secretHash, CancellationToken cancellationToken = default);

    /// <summary>Revokes a key (idempotent): the key as it is now, or null when there is none with this id.</summary>
    [Alias("Revoke")]
    Task<ApiKeyRecord?> RevokeAsync(string id, CancellationToken cancellationToken = default);
}

/// <summary>Store a new API key: its id, name, roles and the SHA-256 hash of its secret.</summary>
[GenerateSerializer, Immutable, Alias("conv.IssueApiKey")]
public sealed record IssueApiKey(
    [Id(0)] string Id,
    [Id(1)] string Name,
    [Id(2)] IReadOnlyList<string> Roles,
    [Id(3)] byte[] SecretHash,
    [Id(4)] string? CreatedBy);

/// <summary>An API key as the registry shows it: no secret, no hash.</summary>
[GenerateSerializer, Immutable, Alias("conv.ApiKeyRecord")]
public sealed record ApiKeyRecord(
    [Id(0)] string Id,
    [Id(1)] string Name,
    [Id(2)] IReadOnlyList<string> Roles,
    [Id(3)] DateTimeOffset CreatedAt,
    [Id(4)] string? CreatedBy,
    [Id(5)] DateTimeOffset? RevokedAt);
