using System.Security.Claims;
using Conversations.Gateway.Limits;
using Conversations.Gateway.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Conversations.Gateway.Auth;

/// <summary>
/// Authentication (JWT bearer and API keys), authorization (every endpoint but health needs a caller when
/// <see cref="AuthOptions.Enabled"/>; the <see cref="Caller.AdminPolicy"/> policy), the open-mode guard, CORS and
/// security headers. Settings are read when first used, so configuration given after the builder (tests) counts.
/// </summary>
public static class GatewaySecurity
{
    /// <summary>The default scheme: it forwards to the API key or the JWT handler, by the credential the request carries.</summary>
    public const string SchemeName = "Conversations";

    public static IHostApplicationBuilder AddGatewaySecurity(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AuthOptions>()
            .BindConfiguration(AuthOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<CorsSettings>()
            .BindConfiguration(CorsSettings.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<ApiKeys>();
        services.AddSingleton<ThreadAccess>();
        services.AddSingleton<OpenModeGuard>();
        services.AddHostedService(sp => sp.GetRequiredService<OpenModeGuard>());

        services.AddAuthentication(SchemeName)
            .AddPolicyScheme(SchemeName, "JWT or API key", o => o.ForwardDefaultSelector = SelectScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddJwtBearer();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<AuthOptions>>((jwt, auth) => ConfigureJwt(jwt, auth.Value));

        services.AddAuthorization();
        services.AddOptions<AuthorizationOptions>().Configure<IOptions<AuthOptions>>((o, auth) =>
        {
            if (auth.Value.Enabled)
            {
                // Everything needs a caller, except what says AllowAnonymous (health).
                o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build();
                o.AddPolicy(Caller.AdminPolicy, p => p.RequireAuthenticatedUser().RequireRole(Caller.AdminRole));
            }
            else
            {
                // An open server's every caller is an admin (Caller.Open); loopback only (OpenModeGuard).
                o.DefaultPolicy = new AuthorizationPolicyBuilder().RequireAssertion(_ => true).Build();
                o.AddPolicy(Caller.AdminPolicy, p => p.RequireAssertion(_ => true));
            }
        });

        services.AddRateLimits();
        services.AddCors();
        services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>()
            .Configure<IOptions<CorsSettings>>((o, cors) => cors.Value.Apply(o));
        return builder;
    }

    /// <summary>
    /// The security middleware, in order: no request before the open-mode check passed; security headers; CORS (when
    /// origins are configured); authentication (when on); authorization.
    /// </summary>
    public static WebApplication UseGatewaySecurity(this WebApplication app)
    {
        var guard = app.Services.GetRequiredService<OpenModeGuard>();
        app.Use((context, next) => guard.Passed ? next(context) : guard.RefuseAsync(context));
        app.UseSecurityHeaders();
        if (app.Services.GetRequiredService<IOptions<CorsSettings>>().Value.Enabled)
        {
            app.UseCors();
        }

        if (app.Services.GetRequiredService<IOptions<AuthOptions>>().Value.Enabled)
        {
            app.UseAuthentication();
        }

        // After authentication: the bucket is the caller's.
        if (app.Services.RateLimitsEnabled())
        {
            app.UseRateLimiter();
        }

        app.UseAuthorization();
        return app;
    }

    private static string SelectScheme(HttpContext context)
    {
        if (Credentials.ApiKey(context.Request) is not null)
        {
            return ApiKeyAuthenticationHandler.SchemeName;
        }

        var auth = context.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value;
        return auth.JwtEnabled ? JwtBearerDefaults.AuthenticationScheme : ApiKeyAuthenticationHandler.SchemeName;
    }

    private static void ConfigureJwt(JwtBearerOptions jwt, AuthOptions auth)
    {
        if (!auth.JwtEnabled)
        {
            return;
        }

        var settings = auth.Jwt;
        // Claims as the token names them: sub, role, roles.
        jwt.MapInboundClaims = false;
        jwt.Audience = settings.Audience;
        jwt.TokenValidationParameters.ValidAudience = settings.Audience;
        jwt.TokenValidationParameters.ClockSkew = settings.ClockSkew;
        jwt.TokenValidationParameters.NameClaimType = "sub";
        if (!string.IsNullOrWhiteSpace(settings.Authority))
        {
            jwt.Authority = settings.Authority;
            jwt.RequireHttpsMetadata = settings.RequireHttpsMetadata;
            if (!string.IsNullOrWhiteSpace(settings.Issuer))
            {
                jwt.TokenValidationParameters.ValidIssuer = settings.Issuer;
            }
        }
        else
        {
            jwt.TokenValidationParameters.ValidIssuer = settings.Issuer;
            jwt.TokenValidationParameters.IssuerSigningKey = new SymmetricSecurityKey(settings.SigningKeyBytes());
            jwt.TokenValidationParameters.ValidateIssuerSigningKey = true;
        }

        var roleClaims = settings.EffectiveRoleClaims;
        jwt.Events = new JwtBearerEvents
        {
            OnMessageReceived = context =>
            {
                // The header is JwtBearer's own; the query token (streams, WebSockets) is ours.
                context.Token = Credentials.Bearer(context.Request);
                return Task.CompletedTask;
            },
            OnTokenValidated = context => AddCaller(context, roleClaims),
            OnChallenge = async context =>
            {
                context.HandleResponse();
                var failure = context.AuthenticateFailure switch
                {
                    null => null,
                    AuthenticationFailureException ours => ours.Message,
                    _ => $"The bearer token is not valid{(string.IsNullOrEmpty(context.ErrorDescription) ? "" : $": {context.ErrorDescription}")}.",
                };
                await AuthProblems.UnauthorizedAsync(context.HttpContext, failure, context.Error);
            },
            OnForbidden = context => AuthProblems.ForbiddenAsync(context.HttpContext),
        };
    }

    /// <summary>A validated token's caller: owner <c>user:{sub}</c> and the roles its role claims list. A token without <c>sub</c> is refused.</summary>
    private static Task AddCaller(TokenValidatedContext context, IReadOnlyList<string> roleClaims)
    {
        var principal = context.Principal!;
        if (principal.FindFirst("sub")?.Value is not { Length: > 0 } subject)
        {
            context.Fail(new AuthenticationFailureException("The token has no 'sub' claim: threads belong to a subject."));
            return Task.CompletedTask;
        }

        var claims = new List<Claim> { new(Caller.OwnerClaim, $"user:{subject}") };
        foreach (var name in roleClaims)
        {
            claims.AddRange(principal.FindAll(name).Select(c => new Claim(ClaimTypes.Role, c.Value)));
        }

        principal.AddIdentity(new ClaimsIdentity(claims, "conversations", ClaimTypes.Name, ClaimTypes.Role));
        return Task.CompletedTask;
    }
}
