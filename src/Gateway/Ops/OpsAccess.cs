using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Ops;

/// <summary>
/// Who may see <c>/ops</c> and <c>/ops/orleans</c>: the one gate every ops endpoint passes (the route group's filter).
/// Now: the Development environment, or <c>Ops:Enabled=true</c>; anything else is answered 404 as if nothing were
/// there. Authorization (an admin policy) goes on the same group.
/// </summary>
internal sealed class OpsAccess(IHostEnvironment environment, IOptions<OpsOptions> options) : IEndpointFilter
{
    public bool IsOpen => environment.IsDevelopment() || options.Value.Enabled;

    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        IsOpen
            ? next(context)
            : ValueTask.FromResult<object?>(TypedResults.Problem(
                statusCode: StatusCodes.Status404NotFound,
                detail: $"Nothing is at {context.HttpContext.Request.Path}. (The ops dashboard is served in Development or with Ops:Enabled=true.)"));
}
