using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Compat.Axmp;

/// <summary>
/// Seed 000, the AXMP conversation completor: <c>POST /conversations/{thread_id}/completion</c> streams the run as
/// Anthropic-style Messages events. The thread in the path is continued, or created with that id.
/// </summary>
public static partial class AxmpApi
{
    /// <summary>The stream modes LangGraph knows; any of them gives the same wire.</summary>
    private static readonly HashSet<string> StreamModes = new(StringComparer.Ordinal)
    {
        "messages", "values", "updates", "custom", "debug", "checkpoints", "tasks",
    };

    public static IEndpointRouteBuilder MapAxmpApi(this IEndpointRouteBuilder app)
    {
        var conversations = app.MapGroup("/conversations").WithTags("Compat: AXMP (seed 000)");
        conversations.MapPost("/{thread_id}/completion", CompleteAsync)
            .WithName("AxmpConversationCompletion")
            .WithSummary("Send a prompt on a thread (created with this id when new) and stream the run as Anthropic-style message events.")
            .Accepts<AxmpCompletionRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces<AnthropicErrorBody>(StatusCodes.Status400BadRequest)
            .Produces<AnthropicErrorBody>(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> CompleteAsync(
        [Microsoft.AspNetCore.Mvc.FromRoute(Name = "thread_id")] string threadId,
        HttpRequest httpRequest,
        ThreadRunner runner,
        IOptions<StreamingOptions> streaming,
        CancellationToken cancellationToken)
    {
        if (!ThreadIdPattern().IsMatch(threadId))
        {
            return InvalidRequest("thread_id: thread_id must be 1-128 characters: letters, digits, '_', '-', '.' or ':'.");
        }

        AxmpCompletionRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<AxmpCompletionRequest>(httpRequest.Body, AxmpJson.Options, cancellationToken);
        }
        catch (JsonException json)
        {
            var error = JsonInputErrors.Describe(json, typeof(AxmpCompletionRequest), AxmpJson.Options);
            return InvalidRequest($"{error.Key}: {error.Message()}");
        }

        if (Validate(request) is { } problem)
        {
            return InvalidRequest(problem);
        }

        var message = new SendMessage(request!.Prompt!)
        {
            Model = request.Model ?? request.LlmModel,
            Temperature = request.Temperature,
            MaxTokens = request.MaxTokens,
        };
        var start = await runner.StartAsync(Caller.Of(httpRequest.HttpContext), threadId, [], message, cancellationToken);
        switch (start)
        {
            case RunStart.Started started:
                // The response ends with the run; the run does not end with the response.
                var items = AnthropicEventProjection.ProjectAsync(started.ThreadId, started.Events, CancellationToken.None);
                return new ServerSentEventsStream(items, streaming.Value.HeartbeatInterval);
            case RunStart.Rejected rejected:
                return TypedResults.Json(
                    new AnthropicErrorBody(new AnthropicError(
                        "invalid_request_error",
                        $"thread_id: run '{rejected.ActiveRunId}' is still active on thread '{threadId}'; wait for it to end.")),
                    AxmpJson.Options,
                    statusCode: StatusCodes.Status409Conflict);
            case RunStart.LimitExceeded exceeded:
                return TypedResults.Json(
                    new AnthropicErrorBody(new AnthropicError("invalid_request_error", $"thread_id: {exceeded.Limit.Detail}")),
                    AxmpJson.Options,
                    statusCode: StatusCodes.Status409Conflict);
            case RunStart.AgentNotFound agent:
                return TypedResults.Json(
                    new AnthropicErrorBody(new AnthropicError("api_error", $"No agent is named '{agent.Agent}'.")),
                    AxmpJson.Options,
                    statusCode: StatusCodes.Status500InternalServerError);
            default:
                return TypedResults.Json(
                    new AnthropicErrorBody(new AnthropicError("not_found_error", $"thread_id: no thread has id '{threadId}'.")),
                    AxmpJson.Options,
                    statusCode: StatusCodes.Status404NotFound);
        }
    }

    private static string? Validate(AxmpCompletionRequest? request)
    {
        if (request is null)
        {
            return "prompt: a JSON body with 'prompt' is required.";
        }

        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            return "prompt: prompt is required and must not be empty.";
        }

        if (MessageText.Problem(request.Prompt) is { } problem)
        {
            return $"prompt: prompt {problem}";
        }

        if (request.Model is { } model && string.IsNullOrWhiteSpace(model))
        {
            return "model: model must not be empty.";
        }

        if (request.LlmModel is { } llmModel && string.IsNullOrWhiteSpace(llmModel))
        {
            return "llm_model: llm_model must not be empty.";
        }

        if (request.Temperature is < 0 or > 2)
        {
            return "temperature: temperature must be between 0 and 2.";
        }

        if (request.MaxTokens is < 1)
        {
            return "max_tokens: max_tokens must be at least 1.";
        }

        if (request.StreamMode is { } mode && !StreamModes.Contains(mode))
        {
            return $"stream_mode: stream_mode must be one of {string.Join(", ", StreamModes)}.";
        }

        return null;
    }

    private static IResult InvalidRequest(string message) => TypedResults.Json(
        new AnthropicErrorBody(new AnthropicError("invalid_request_error", message)), AxmpJson.Options, statusCode: StatusCodes.Status400BadRequest);

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex ThreadIdPattern();
}
