using System.Security.Claims;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Auth;

/// <summary>
/// Who is calling, as the thread endpoints need it: the owner id their threads get, and whether they may see every
/// thread (admins, and every caller of an open server). Built from the request's principal.
/// </summary>
public sealed record Caller(string? Owner, bool IsAdmin)
{
    /// <summary>The claim that carries a caller's owner id (a user's <c>user:{subject}</c>, an API key's <c>key:{id}</c>).</summary>
    public const string OwnerClaim = "conversations:owner";

    /// <summary>The role of callers who manage agents, models and keys and see <c>/ops</c>.</summary>
    public const string AdminRole = "admin";

    /// <summary>
    /// The authorization policy of admin endpoints (<c>.RequireAuthorization(Caller.AdminPolicy)</c>): the
    /// <see cref="AdminRole"/> role when authentication is on; anyone on an open (loopback) server.
    /// </summary>
    public const string AdminPolicy = "admin";

    /// <summary>An open server's caller (no authentication configured): owns nothing, may do everything.</summary>
    public static readonly Caller Open = new(null, IsAdmin: true);

    /// <summary>The caller of <paramref name="context"/>: <see cref="Open"/> when the request is not authenticated.</summary>
    /// <remarks>
    /// Authentication runs before any endpoint that calls this; on a server with authentication on, an endpoint that
    /// needs a caller requires an authenticated one, so an unauthenticated request never gets here.
    /// </remarks>
    public static Caller Of(HttpContext context) => Of(context.User);

    public static Caller Of(ClaimsPrincipal user) =>
        user.Identity?.IsAuthenticated == true
            ? new Caller(user.FindFirst(OwnerClaim)?.Value, user.IsInRole(AdminRole))
            : Open;

    /// <summary>Whether this caller may see and touch <paramref name="thread"/>: its owner, or an admin.</summary>
    public bool MayAccess(ThreadSnapshot thread) => IsAdmin || string.Equals(thread.Owner, Owner, StringComparison.Ordinal);
}
