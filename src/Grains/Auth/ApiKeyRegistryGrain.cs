using System.Security.Cryptography;
using Conversations.Grains.Abstractions.Auth;
using Conversations.Grains.Agents;

namespace Conversations.Grains.Auth;

/// <summary>
/// The cluster's API keys (<see cref="IApiKeyRegistryGrain"/>), kept in the grain storage that holds the agent
/// catalog (the SQLite file embedded, PostgreSQL in cluster mode). Verification reads memory only; reads interleave.
/// </summary>
[GrainType("api-key-registry")]
public sealed class ApiKeyRegistryGrain(
    [PersistentState("api-keys", AgentCatalogGrain.StorageName)] IPersistentState<ApiKeyRegistryState> state,
    TimeProvider time) : Grain, IApiKeyRegistryGrain
{
    public async Task<ApiKeyRecord?> IssueAsync(IssueApiKey command, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command.Id);
        if (command.SecretHash is not { Length: SHA256.HashSizeInBytes })
        {
            throw new ArgumentException("The secret's hash must be a SHA-256 hash.", nameof(command));
        }

        if (state.State.Keys.ContainsKey(command.Id))
        {
            return null;
        }

        var key = new StoredApiKey(
            new ApiKeyRecord(command.Id, command.Name, [.. command.Roles], time.GetUtcNow(), command.CreatedBy, RevokedAt: null),
            Convert.ToHexString(command.SecretHash));
        await WriteAsync(With(command.Id, key), cancellationToken);
        return key.Record;
    }

    public Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<ApiKeyRecord>>([.. state.State.Keys.Values.Select(k => k.Record).OrderBy(k => k.CreatedAt).ThenBy(k => k.Id, StringComparer.Ordinal)]);

    public Task<ApiKeyRecord?> VerifyAsync(string id, byte[] secretHash, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            state.State.Keys.TryGetValue(id, out var key)
            && key.Record.RevokedAt is null
            && secretHash is { Length: SHA256.HashSizeInBytes }
            && CryptographicOperations.FixedTimeEquals(Convert.FromHexString(key.SecretHash), secretHash)
                ? key.Record
                : null);

    public async Task<ApiKeyRecord?> RevokeAsync(string id, CancellationToken cancellationToken = default)
    {
        if (!state.State.Keys.TryGetValue(id, out var key))
        {
            return null;
        }

        if (key.Record.RevokedAt is not null)
        {
            return key.Record;
        }

        var revoked = key with { Record = key.Record with { RevokedAt = time.GetUtcNow() } };
        await WriteAsync(With(id, revoked), cancellationToken);
        return revoked.Record;
    }

    /// <summary>The state with <paramref name="key"/> stored under <paramref name="id"/>: a copy, so a failed write leaves memory as storage has it.</summary>
    private ApiKeyRegistryState With(string id, StoredApiKey key) =>
        new() { Keys = new Dictionary<string, StoredApiKey>(state.State.Keys, StringComparer.Ordinal) { [id] = key } };

    private Task WriteAsync(ApiKeyRegistryState next, CancellationToken cancellationToken) => state.WriteOrRestoreAsync(next, cancellationToken);
}

/// <summary>The registry's stored state: every key by id.</summary>
[GenerateSerializer, Alias("conv.ApiKeyRegistryState")]
public sealed record ApiKeyRegistryState
{
    [Id(0)]
    public Dictionary<string, StoredApiKey> Keys { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>One stored key: what the registry shows, and the SHA-256 hash of its secret (hex).</summary>
[GenerateSerializer, Immutable, Alias("conv.StoredApiKey")]
public sealed record StoredApiKey([Id(0)] ApiKeyRecord Record, [Id(1)] string SecretHash);
