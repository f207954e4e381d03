using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;

namespace Conversations.Gateway.Errors;

/// <summary>
/// Turns a request body that cannot be read (malformed JSON, a value of the wrong type) into a 400
/// ValidationProblem that names the field, instead of a bare 400.
/// </summary>
internal sealed class BadRequestExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException badRequest)
        {
            return false;
        }

        var (field, message) = badRequest.InnerException is JsonException json
            ? (FieldName(json.Path), Describe(json))
            : ("body", badRequest.Message);
        httpContext.Response.StatusCode = badRequest.StatusCode;
        var problem = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = badRequest.StatusCode,
            Title = "The request body is not valid.",
            Detail = $"{field}: {message}",
        };
        return await problemDetails.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    /// <summary><c>$.messages[0].content</c> → <c>messages[0].content</c>; the root → <c>body</c>.</summary>
    private static string FieldName(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "body" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    private static string Describe(JsonException json)
    {
        // System.Text.Json's messages name CLR types; keep the part a client can act on.
        var message = json.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        message = cut > 0 ? message[..cut] : message;
        return message.Replace("System.", string.Empty, StringComparison.Ordinal);
    }
}
