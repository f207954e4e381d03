using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Errors;

/// <summary>
/// Turns a request the endpoint could not bind (a body that is not JSON or has a value of the wrong type, a query value
/// of the wrong type, a wrong content type) into a 400 ValidationProblem that names the field in a client's words
/// (<c>content must be a string.</c>, <c>limit must be an integer.</c>), never a .NET type or parameter signature.
/// </summary>
internal sealed partial class BadRequestExceptionHandler(IProblemDetailsService problemDetails, IOptions<JsonOptions> json, IOptions<Limits.GatewayLimitsOptions> limits) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException badRequest || httpContext.Response.HasStarted)
        {
            return false;
        }

        if (badRequest.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // A body without Content-Length that grew over the limit the body-limit middleware set.
            httpContext.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            httpContext.Response.Headers.Connection = "close";
            var limit = httpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize
                ?? limits.Value.MaxRequestBodyBytes;
            return await problemDetails.TryWriteAsync(new ProblemDetailsContext
            {
                HttpContext = httpContext,
                ProblemDetails = Limits.BodyLimitMiddleware.TooLarge(limit, length: null),
                Exception = exception,
            });
        }

        var (field, message) = Describe(httpContext, badRequest);
        httpContext.Response.StatusCode = badRequest.StatusCode;
        var problem = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = badRequest.StatusCode,
            Title = badRequest.StatusCode == StatusCodes.Status415UnsupportedMediaType ? "The request body is not JSON."
                : badRequest.InnerException is JsonException ? "The request body is not valid." : "The request is not valid.",
            Detail = message,
        };
        return await problemDetails.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    private (string Field, string Message) Describe(HttpContext httpContext, BadHttpRequestException badRequest)
    {
        if (badRequest.InnerException is JsonException body)
        {
            // The exception handler clears the request's endpoint; its feature keeps the one that failed.
            var endpoint = httpContext.Features.Get<IExceptionHandlerFeature>()?.Endpoint ?? httpContext.GetEndpoint();
            var requestType = endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
            var error = JsonInputErrors.Describe(body, requestType, json.Value.SerializerOptions);
            return (error.Key, error.Message());
        }

        if (badRequest.StatusCode == StatusCodes.Status415UnsupportedMediaType)
        {
            var contentType = httpContext.Request.ContentType;
            return ("Content-Type", $"The request body must be JSON: send Content-Type: application/json{(string.IsNullOrEmpty(contentType) ? "" : $" (got '{contentType}')")}.");
        }

        // The binder's messages name the parameter's .NET type: "Failed to bind parameter \"Nullable<int> limit\" from \"abc\"."
        if (BindFailure().Match(badRequest.Message) is { Success: true } bind)
        {
            var name = bind.Groups["name"].Value;
            var value = bind.Groups["value"].Value;
            value = value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 64), "…");
            return (name, $"{name} must be {Expected(bind.Groups["type"].Value)}; got '{value}'.");
        }

        if (MissingParameter().Match(badRequest.Message) is { Success: true } missing)
        {
            var name = missing.Groups["name"].Value;
            return (name, $"{name} is required.");
        }

        if (badRequest.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return ("body", "The request body is too large.");
        }

        // Anything else the server could not read; its own words only when they name no .NET type.
        return ("body", NamesClrType(badRequest.Message) ? "The request could not be read." : badRequest.Message);
    }

    private static string Expected(string clrType)
    {
        var type = clrType.StartsWith("Nullable<", StringComparison.Ordinal) ? clrType["Nullable<".Length..].TrimEnd('>') : clrType.TrimEnd('?');
        return type switch
        {
            "int" or "long" or "short" or "byte" or "uint" or "ulong" or "Int32" or "Int64" => "an integer",
            "double" or "float" or "decimal" or "Double" or "Single" or "Decimal" => "a number",
            "bool" or "Boolean" => "true or false",
            "Guid" => "a UUID",
            "DateTime" or "DateTimeOffset" => "a date and time in ISO 8601",
            "TimeSpan" => "a duration such as 00:00:30",
            _ => "a valid value",
        };
    }

    private static bool NamesClrType(string message) =>
        message.Contains("System.", StringComparison.Ordinal) || message.Contains("Conversations.", StringComparison.Ordinal)
        || message.Contains("Nullable<", StringComparison.Ordinal) || message.Contains("parameter \"", StringComparison.Ordinal);

    [GeneratedRegex("^Failed to bind parameter \"(?<type>.+) (?<name>[^ \"]+)\" from \"(?<value>.*)\"\\.$", RegexOptions.Singleline)]
    private static partial Regex BindFailure();

    [GeneratedRegex("^Required parameter \"(?<type>.+) (?<name>[^ \"]+)\" was not provided", RegexOptions.Singleline)]
    private static partial Regex MissingParameter();
}
