using System.ComponentModel.DataAnnotations;
using System.Text;

namespace Conversations.Gateway.Auth;

/// <summary>
/// Authentication settings (section <c>Auth</c>). With neither <see cref="Jwt"/> nor <see cref="AdminApiKeys"/> the
/// server is open — every caller is an admin — which it allows only on loopback addresses (or with
/// <see cref="AllowOpen"/>).
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string SectionName = "Auth";

    /// <summary>The shortest bootstrap admin key and JWT signing key accepted (bytes): 256 bits, HS256's minimum.</summary>
    public const int MinSecretBytes = 32;

    /// <summary>JWT bearer tokens: an OpenID Connect authority, or an issuer with a symmetric signing key.</summary>
    public JwtAuthOptions Jwt { get; set; } = new();

    /// <summary>
    /// Admin API keys given by configuration (secrets, each at least 32 characters), for the operator who issues the
    /// first keys. Compared hashed, in constant time; they cannot be revoked through the API (remove them here). Blank
    /// entries are ignored (a deployment that leaves its variable empty).
    /// </summary>
    public string[]? AdminApiKeys { get; set; }

    /// <summary>Serve without authentication on addresses other than loopback (every caller is then an admin).</summary>
    public bool AllowOpen { get; set; }

    /// <summary>True when JWTs are configured.</summary>
    public bool JwtEnabled => !string.IsNullOrWhiteSpace(Jwt.Authority) || !string.IsNullOrWhiteSpace(Jwt.SigningKey);

    /// <summary>True when requests must authenticate: JWTs or bootstrap admin keys are configured.</summary>
    public bool Enabled => JwtEnabled || AdminApiKeys?.Any(k => !string.IsNullOrWhiteSpace(k)) == true;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var jwt = Jwt;
        var hasAuthority = !string.IsNullOrWhiteSpace(jwt.Authority);
        var hasKey = !string.IsNullOrWhiteSpace(jwt.SigningKey);
        if (hasAuthority && hasKey)
        {
            yield return new("Auth:Jwt: set either Authority (keys from its OpenID metadata) or SigningKey (a symmetric key), not both.", ["Jwt"]);
        }

        if (hasAuthority && !Uri.TryCreate(jwt.Authority, UriKind.Absolute, out _))
        {
            yield return new("Auth:Jwt:Authority must be an absolute URL (the token issuer's base address).", ["Jwt.Authority"]);
        }

        if ((hasAuthority || hasKey) && string.IsNullOrWhiteSpace(jwt.Audience))
        {
            yield return new("Auth:Jwt:Audience is required with Auth:Jwt: tokens must name this API as their audience.", ["Jwt.Audience"]);
        }

        if (hasKey)
        {
            if (string.IsNullOrWhiteSpace(jwt.Issuer))
            {
                yield return new("Auth:Jwt:Issuer is required with Auth:Jwt:SigningKey: tokens must name their issuer.", ["Jwt.Issuer"]);
            }

            string? keyError = null;
            try
            {
                if (jwt.SigningKeyBytes().Length < MinSecretBytes)
                {
                    keyError = $"Auth:Jwt:SigningKey must be at least {MinSecretBytes} bytes (256 bits).";
                }
            }
            catch (FormatException)
            {
                keyError = "Auth:Jwt:SigningKey starts with 'base64:' but what follows is not base64.";
            }

            if (keyError is not null)
            {
                yield return new(keyError, ["Jwt.SigningKey"]);
            }
        }

        for (var i = 0; i < (AdminApiKeys?.Length ?? 0); i++)
        {
            if (AdminApiKeys![i] is { } key && !string.IsNullOrWhiteSpace(key) && key.Trim().Length < MinSecretBytes)
            {
                yield return new($"Auth:AdminApiKeys:{i} must be at least {MinSecretBytes} characters of high-entropy secret.", [$"AdminApiKeys[{i}]"]);
            }
        }
    }
}

/// <summary>JWT bearer settings (section <c>Auth:Jwt</c>).</summary>
public sealed class JwtAuthOptions
{
    /// <summary>An OpenID Connect issuer: its metadata gives the issuer and signing keys.</summary>
    public string? Authority { get; set; }

    /// <summary>Fetch the authority's metadata over HTTPS only (default true).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>The issuer tokens must name (<c>iss</c>); required with <see cref="SigningKey"/>.</summary>
    public string? Issuer { get; set; }

    /// <summary>The audience tokens must name (<c>aud</c>).</summary>
    public string? Audience { get; set; }

    /// <summary>A symmetric key (HS256/384/512): UTF-8 text, or <c>base64:</c> followed by the key's bytes in base64.</summary>
    public string? SigningKey { get; set; }

    /// <summary>The claims that carry a user's roles (default <c>role</c> and <c>roles</c>); <c>admin</c> among them makes an admin.</summary>
    public string[]? RoleClaims { get; set; }

    /// <summary>How far token lifetimes may be off (default 1 minute).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The role claims in effect.</summary>
    public IReadOnlyList<string> EffectiveRoleClaims => RoleClaims is { Length: > 0 } claims ? claims : ["role", "roles"];

    /// <summary>The signing key's bytes.</summary>
    public byte[] SigningKeyBytes() =>
        SigningKey!.StartsWith("base64:", StringComparison.Ordinal)
            ? Convert.FromBase64String(SigningKey["base64:".Length..])
            : Encoding.UTF8.GetBytes(SigningKey);
}
