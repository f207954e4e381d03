using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.OpenAi;

/// <summary>
/// What the OpenAI-shaped dialects (OpenAI chat completions, Langbase) share before the projection: reading a body
/// with OpenAI's JSON, the message content forms, thread ids, starting the run, and errors in OpenAI's shape.
/// </summary>
public static partial class CompatRuns
{
    /// <summary>The longest history a request may carry.</summary>
    public const int MaxMessages = 1000;

    /// <summary>Reads a JSON body; a body that is not JSON (or has a value of the wrong type) is a 400 naming the field.</summary>
    public static async Task<(T? Value, IResult? Error)> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, OpenAiJson.Options, cancellationToken);
            return value is null ? (null, Invalid("The request body must be a JSON object.", null)) : (value, null);
        }
        catch (JsonException ex)
        {
            // Named in a client's words ("'messages[0].content' must be a string."), never by the .NET type being read.
            var error = JsonInputErrors.Describe(ex, typeof(T), OpenAiJson.Options);
            return (null, Invalid(error.Message(quoteField: true), error.Field));
        }
    }

    /// <summary>
    /// The text of a message's <c>content</c>: a string, null (empty), or an array of <c>{"type":"text","text":…}</c>
    /// parts joined with newlines. Other part types (images, audio) are refused, naming the part.
    /// </summary>
    public static string? ContentText(JsonElement? content, string field, out IResult? error)
    {
        error = null;
        if (content is not { } element || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return string.Empty;
        }

        if (element.ValueKind == JsonValueKind.String)
        {
            return Text(element, field, out error) is { } whole ? Limit(whole, field, out error) : null;
        }

        if (element.ValueKind != JsonValueKind.Array)
        {
            error = Invalid($"'{field}' must be a string or an array of text parts.", field);
            return null;
        }

        var text = new StringBuilder();
        var i = 0;
        foreach (var part in element.EnumerateArray())
        {
            var partField = $"{field}[{i++}]";
            if (part.ValueKind != JsonValueKind.Object
                || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                error = Invalid($"'{partField}' must be an object with a 'type'.", partField);
                return null;
            }

            if (!type.ValueEquals("text") || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
            {
                error = Invalid($"'{partField}': only parts of type 'text' with a string 'text' are supported.", partField);
                return null;
            }

            if (Text(partText, $"{partField}.text", out error) is not { } partValue)
            {
                return null;
            }

            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(partValue);
        }

        return Limit(text.ToString(), field, out error);
    }

    /// <summary>A JSON string's value; a 400 naming the field when it is not text (invalid UTF-8, a lone surrogate).</summary>
    public static string? Text(JsonElement element, string field, out IResult? error)
    {
        var value = JsonInputErrors.TextOf(element, out var problem);
        error = problem is null ? null : Invalid(new JsonInputError(field, problem).Message(quoteField: true), field);
        return value;
    }

    /// <summary>True for a thread id the native API would accept.</summary>
    public static bool IsValidThreadId(string threadId) => ThreadIdPattern().IsMatch(threadId);

    /// <summary>What to run, once the request is valid.</summary>
    /// <param name="ThreadId">The thread to continue or create; null for a new one.</param>
    /// <param name="PriorMessages">The history of a new thread (ignored by an existing one).</param>
    /// <param name="Message">The user message and the run's overrides.</param>
    public sealed record RunRequest(string? ThreadId, IReadOnlyList<NewMessage> PriorMessages, SendMessage Message);

    /// <summary>
    /// Starts the run and sets <paramref name="threadHeader"/> to the thread id on the response. Returns the started
    /// run, or the error to answer with (404 unknown agent, 409 a run is active) in OpenAI's shape.
    /// </summary>
    public static async Task<(RunStart.Started? Run, IResult? Error)> StartAsync(
        HttpContext httpContext, string threadHeader, RunRequest request, ThreadRunner runner, IAgentCatalog agents,
        string agentParam, CancellationToken cancellationToken)
    {
        // Checked first, so an unknown agent does not leave an empty thread behind.
        if (request.Message.Agent is { } agent && await agents.GetAsync(agent, cancellationToken) is null)
        {
            return (null, Error(StatusCodes.Status404NotFound, $"No agent is named '{agent}'.", "invalid_request_error", agentParam, "agent_not_found"));
        }

        var start = await runner.StartAsync(Caller.Of(httpContext), request.ThreadId, request.PriorMessages, request.Message, cancellationToken);
        switch (start)
        {
            case RunStart.Started started:
                httpContext.Response.Headers[threadHeader] = started.ThreadId;
                return (started, null);
            case RunStart.Rejected rejected:
                httpContext.Response.Headers[threadHeader] = rejected.ThreadId;
                return (null, RunActive(rejected.ActiveRunId));
            case RunStart.LimitExceeded exceeded:
                httpContext.Response.Headers[threadHeader] = exceeded.ThreadId;
                return (null, ThreadFull(exceeded.Limit));
            case RunStart.AgentNotFound notFound:
                return (null, Error(StatusCodes.Status404NotFound, $"No agent is named '{notFound.Agent}'.", "invalid_request_error", agentParam, "agent_not_found"));
            default:
                return (null, Error(StatusCodes.Status404NotFound, "The thread does not exist.", "invalid_request_error", "thread_id", "thread_not_found"));
        }
    }

    /// <summary>409: the thread's run is still active (the <c>reject</c> strategy).</summary>
    public static IResult RunActive(string activeRunId) => Error(
        StatusCodes.Status409Conflict,
        $"Run '{activeRunId}' is still active on this thread; wait for it to end or cancel it.",
        "invalid_request_error",
        null,
        "run_active");

    /// <summary>400 in OpenAI's shape, naming the field in <c>param</c>.</summary>
    public static IResult Invalid(string message, string? param, string? code = null) =>
        Error(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    /// <summary>An error body in OpenAI's shape with this status.</summary>
    /// <summary>409: the send would take the thread over a storage limit; the code names the setting's limit.</summary>
    public static IResult ThreadFull(ThreadLimit limit) =>
        Error(StatusCodes.Status409Conflict, limit.Detail, "invalid_request_error", limit.Setting, "thread_limit_exceeded");

    public static IResult Error(int status, string message, string type, string? param, string? code) =>
        TypedResults.Json(new OpenAiErrorResponse(new OpenAiError(message, type, param, code)), OpenAiJson.Options, statusCode: status);

    /// <summary>
    /// A failed run as a non-streaming answer, in OpenAI's error shape with the status its code calls for
    /// (<see cref="RunFailureStatus"/>: 503 model unavailable or run interrupted, 502 model error, 409 cancelled, 500 else).
    /// </summary>
    public static IResult RunFailed(OpenAiErrorResponse error) => TypedResults.Json(error, OpenAiJson.Options, statusCode: RunFailureStatus.For(error.Error.Code));

    private static string? Limit(string text, string field, out IResult? error)
    {
        error = MessageText.Problem(text) is { } problem ? Invalid($"'{field}' {problem}", field) : null;
        return error is null ? text : null;
    }

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex ThreadIdPattern();
}
