using System.Security.Cryptography;
using System.Text;
using Conversations.Grains.Abstractions.Auth;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Auth;

/// <summary>
/// API keys: <c>ck_{id}_{secret}</c>, the id 16 hex digits, the secret 32 random bytes in base64url. Only the SHA-256
/// hash of the whole key is stored (in the cluster's <see cref="IApiKeyRegistryGrain"/>); the key itself is shown
/// once, when it is issued. Bootstrap admin keys come from <see cref="AuthOptions.AdminApiKeys"/>.
/// </summary>
public sealed class ApiKeys(IGrainFactory grains, IOptions<AuthOptions> options)
{
    /// <summary>What every issued key starts with.</summary>
    public const string Prefix = "ck_";

    private readonly (string Id, byte[] Hash)[] _configured = [.. (options.Value.AdminApiKeys ?? [])
        .Where(k => !string.IsNullOrWhiteSpace(k))
        .Select(k => Hash(k.Trim()))
        .Select(hash => ($"config-{Convert.ToHexStringLower(hash)[..8]}", hash))];

    /// <summary>A new key: its id and the secret to show once.</summary>
    public static (string Id, string Key) Generate()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return (id, $"{Prefix}{id}_{secret}");
    }

    /// <summary>The SHA-256 hash of a presented key.</summary>
    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>True when <paramref name="credential"/> has the shape of an issued key (so it is not a JWT).</summary>
    public static bool LooksLikeKey(string credential) => credential.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>
    /// The key <paramref name="key"/> is, when it is a configured admin key or an issued key that is not revoked;
    /// null otherwise. Asks the registry on every call, so a revocation holds at once on every gateway.
    /// </summary>
    public async Task<ApiKeyRecord?> VerifyAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Hash(key);
        foreach (var (id, configured) in _configured)
        {
            if (CryptographicOperations.FixedTimeEquals(configured, hash))
            {
                return new ApiKeyRecord(id, "configuration", [Caller.AdminRole], DateTimeOffset.UnixEpoch, CreatedBy: null, RevokedAt: null);
            }
        }

        // ck_{16 hex}_{secret}: the id picks the record; the hash decides.
        if (key.Length < Prefix.Length + 18 || !LooksLikeKey(key) || key[Prefix.Length + 16] != '_')
        {
            return null;
        }

        var keyId = key.Substring(Prefix.Length, 16);
        if (!keyId.All(char.IsAsciiHexDigitLower))
        {
            return null;
        }

        return await grains.GetGrain<IApiKeyRegistryGrain>(IApiKeyRegistryGrain.Key).VerifyAsync(keyId, hash, cancellationToken);
    }
}
