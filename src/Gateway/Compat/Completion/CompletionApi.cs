using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Catalog;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Compat.Completion;

/// <summary>
/// Seed 001: <c>POST /completion</c>. A conversation is a thread (<c>conversation_id</c> = thread id); the reply is
/// one JSON <see cref="CompletionResponse"/>, or with <c>stream: true</c> SSE <see cref="StreamChunk"/>s.
/// </summary>
public static partial class CompletionApi
{
    public const int MaxHistoryMessages = 100;

    public static IEndpointRouteBuilder MapCompletionApi(this IEndpointRouteBuilder app)
    {
        var completion = app.MapGroup("/completion").WithTags("Compat: Completion (seed 001)");
        completion.MapPost("", CompleteAsync)
            .WithName("Completion")
            .WithSummary("Run the agent on a message: the whole answer as JSON, or with \"stream\": true SSE chunks {content, done, metadata, conversation_id}.")
            .Accepts<CompletionRequest>("application/json")
            .Produces<CompletionResponse>(StatusCodes.Status200OK)
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces<ErrorResponse>(StatusCodes.Status400BadRequest)
            .Produces<ErrorResponse>(StatusCodes.Status409Conflict)
            .Produces<ErrorResponse>(StatusCodes.Status500InternalServerError);
        return app;
    }

    private static async Task<IResult> CompleteAsync(
        HttpRequest httpRequest, [AsParameters] CompletionServices services, CancellationToken cancellationToken)
    {
        CompletionRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<CompletionRequest>(httpRequest.Body, CompletionJson.Options, cancellationToken);
        }
        catch (JsonException json)
        {
            return services.Error(StatusCodes.Status400BadRequest, JsonInputErrors.Describe(json, typeof(CompletionRequest), CompletionJson.Options).Message());
        }

        if (Validate(request) is { } problem)
        {
            return services.Error(StatusCodes.Status400BadRequest, problem);
        }

        var agentName = request!.Agent ?? AgentDefinition.DefaultName;
        var agent = await services.Agents.GetAsync(agentName, cancellationToken);
        if (agent is null)
        {
            return services.Error(StatusCodes.Status400BadRequest, AgentNotAvailable(agentName));
        }

        if (request.Stream == true)
        {
            // As the seed does: refuse before anything runs, naming the model as the client gave it.
            var model = (await services.Silo.GetModelsAsync(cancellationToken)).Find(request.Model ?? agent.Model);
            if (!model.SupportsStreaming)
            {
                return services.Error(
                    StatusCodes.Status400BadRequest,
                    $"Model '{request.Model ?? model.Name}' does not support streaming. Please set stream=false or use a streaming-capable model.");
            }
        }

        var history = (request.ConversationHistory ?? []).Select(m => new NewMessage(m!.Role!, m.Content!)).ToList();
        var message = new SendMessage(request.Message!)
        {
            Agent = request.Agent,
            Model = request.Model,
            Temperature = request.Temperature,
            MaxTokens = request.MaxTokens,
        };
        var start = await services.Runner.StartAsync(Caller.Of(httpRequest.HttpContext), request.ConversationId, history, message, cancellationToken);
        switch (start)
        {
            case RunStart.Rejected rejected:
                return services.Error(
                    StatusCodes.Status409Conflict,
                    $"Run '{rejected.ActiveRunId}' is still active on conversation '{rejected.ThreadId}'; wait for it to end.");
            case RunStart.AgentNotFound notFound:
                return services.Error(StatusCodes.Status400BadRequest, AgentNotAvailable(notFound.Agent));
            case RunStart.LimitExceeded exceeded:
                return services.Error(StatusCodes.Status409Conflict, exceeded.Limit.Detail);
            case RunStart.ThreadNotFound notFound:
                return services.Error(StatusCodes.Status404NotFound, $"Conversation '{notFound.ThreadId}' was not found.");
        }

        var started = (RunStart.Started)start;
        var run = new CompletionRun(started.ThreadId, request);
        if (request.Stream == true)
        {
            // The response ends with the run; the run does not end with the response.
            var items = run.ToSseItemsAsync(started.Events, CancellationToken.None);
            return new ServerSentEventsStream(items, services.Streaming.Value.HeartbeatInterval);
        }

        var response = await run.CollectAsync(started.Events, cancellationToken);
        return response is not null
            ? TypedResults.Json(response, CompletionJson.Options)
            : services.Error(StatusCodes.Status500InternalServerError, $"Completion failed: {run.Error}");
    }

    private static string? Validate(CompletionRequest? request)
    {
        if (request is null)
        {
            return "A JSON body with 'message' is required.";
        }

        if (string.IsNullOrWhiteSpace(request.Message))
        {
            return "message is required and must not be empty.";
        }

        if (MessageText.Problem(request.Message) is { } problem)
        {
            return $"message {problem}";
        }

        if (request.Model is { } model && string.IsNullOrWhiteSpace(model))
        {
            return "model must not be empty.";
        }

        if (request.Agent is { Length: 0 or > 128 })
        {
            return "agent must be 1-128 characters.";
        }

        if (request.Temperature is < 0 or > 2)
        {
            return "temperature must be between 0 and 2.";
        }

        if (request.MaxTokens is < 1)
        {
            return "max_tokens must be at least 1.";
        }

        if (request.ConversationId is { } id && !ConversationIdPattern().IsMatch(id))
        {
            return "conversation_id must be 1-128 characters: letters, digits, '_', '-', '.' or ':'.";
        }

        var history = request.ConversationHistory ?? [];
        if (history.Count > MaxHistoryMessages)
        {
            return $"conversation_history holds at most {MaxHistoryMessages} messages.";
        }

        for (var i = 0; i < history.Count; i++)
        {
            if (history[i]?.Role is not (MessageRoles.User or MessageRoles.Assistant or MessageRoles.System))
            {
                return $"conversation_history[{i}].role must be 'user', 'assistant' or 'system'.";
            }

            if (string.IsNullOrWhiteSpace(history[i]!.Content))
            {
                return $"conversation_history[{i}].content is required and must be at most {ThreadsApi.MaxMessageLength} characters.";
            }

            if (MessageText.Problem(history[i]!.Content!) is { } historyProblem)
            {
                return $"conversation_history[{i}].content {historyProblem}";
            }
        }

        return null;
    }

    private static string AgentNotAvailable(string agent) => $"Agent '{agent}' is not available.";

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex ConversationIdPattern();
}

/// <summary>Dependencies of the completion handler, bundled.</summary>
public readonly record struct CompletionServices(
    ThreadRunner Runner, IAgentCatalog Agents, SiloCatalog Silo, IOptions<StreamingOptions> Streaming, TimeProvider Time)
{
    /// <summary>Seed 001's error body with this status.</summary>
    public IResult Error(int statusCode, string message) =>
        TypedResults.Json(new ErrorResponse(message, message, Time.GetUtcNow().UtcDateTime), CompletionJson.Options, statusCode: statusCode);
}
