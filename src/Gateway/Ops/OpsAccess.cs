using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Ops;

/// <summary>
/// Who may see <c>/ops</c> and <c>/ops/orleans</c>: the one gate every ops endpoint passes (the route group's filter).
/// With authentication on, admins (the group requires <see cref="Auth.Caller.AdminPolicy"/>); on an open server, where
/// every caller is an admin, only in the Development environment or with <c>Ops:Enabled=true</c>. Anything else is
/// answered 404 as if nothing were there.
/// </summary>
internal sealed class OpsAccess(IHostEnvironment environment, IOptions<OpsOptions> options, IOptions<Auth.AuthOptions> auth) : IEndpointFilter
{
    public bool IsOpen => auth.Value.Enabled || environment.IsDevelopment() || options.Value.Enabled;

    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        IsOpen
            ? next(context)
            : ValueTask.FromResult<object?>(TypedResults.Problem(
                statusCode: StatusCodes.Status404NotFound,
                detail: $"Nothing is at {context.HttpContext.Request.Path}. (The ops dashboard is served to admins, or on a server without authentication in Development or with Ops:Enabled=true.)"));
}
