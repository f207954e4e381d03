using System.Net.ServerSentEvents;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Gateway.Catalog;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>
/// Seed 003 (a FastAPI "Streaming Chat API"): <c>POST /chat/stream</c> (SSE of <c>event_type</c> events),
/// <c>POST /chat</c>, <c>GET /agents</c>, <c>POST /agents/{agent_name}</c>, the <c>/ws</c> WebSocket and the
/// <c>/docs</c> page. Every chat is a run of the thread grain; these endpoints only project its events.
/// </summary>
public static class StreamingChatApi
{
    public const int MaxInstructionsLength = 32_000;
    public const int MaxDisplayNameLength = 128;
    public const int MaxModelNameLength = 128;

    public static IEndpointRouteBuilder MapStreamingChatApi(this IEndpointRouteBuilder app)
    {
        // The agent → conversation map lives in the cluster (see StreamingChatConversations).
        var conversations = app.ServiceProvider.GetRequiredService<StreamingChatConversations>();

        var chat = app.MapGroup("/chat").WithTags("Streaming chat (seed 003)");
        chat.MapPost("/stream", (ChatRequest? request, HttpContext context, [AsParameters] StreamingChatServices services, CancellationToken cancellationToken) =>
                StreamChatAsync(request, Caller.Of(context), conversations, services, cancellationToken))
            .WithName("StreamingChatStream")
            .WithSummary("Chat with an agent, streamed as Server-Sent Events: data: {\"event_type\": \"chat_chunk\" | \"tool_call_start\" | \"tool_call_complete\" | \"tool_call_error\" | \"chat_complete\" | \"error\", …}.");
        chat.MapPost("/", (ChatRequest? request, HttpContext context, [AsParameters] StreamingChatServices services, CancellationToken cancellationToken) =>
                ChatAsync(request, Caller.Of(context), conversations, services, cancellationToken))
            .WithName("StreamingChat")
            .WithSummary("Chat with an agent and get the whole reply with its tool calls and usage.");

        var agents = app.MapGroup("/agents").WithTags("Streaming chat (seed 003)");
        agents.MapGet("/", (string? format, [AsParameters] AgentServices services, CancellationToken cancellationToken) =>
                format is null ? ListAgentsAsync(conversations, services, cancellationToken) : Agents.AgentsApi.ListFormatAsync(format, services.Silo, cancellationToken))
            .WithName("StreamingChatListAgents")
            .Produces<AgentListResponse>()
            .WithSummary("List the agents: seed 003's shape ({\"agents\": [{\"name\", \"display_name\", \"instructions\", \"model\", \"max_parallel_tools\", \"tool_call_timeout\", \"tools\"}]}); ?format=native for the native agents API's ({\"data\": [agent]}).");
        agents.MapPost("/{agent_name}", (string agent_name, AgentConfigRequest? request, [AsParameters] AgentServices services, CancellationToken cancellationToken) =>
                SaveAgentAsync(agent_name, request, conversations, services, cancellationToken))
            .WithName("StreamingChatSaveAgent")
            .RequireAuthorization(Caller.AdminPolicy)
            .WithSummary("Create an agent (or replace one) with instructions, model, max_parallel_tools and tool_call_timeout (seconds).");

        app.MapStreamingChatWebSocket(conversations);
        app.MapApiDocs();
        return app;
    }

    private static async Task<IResult> StreamChatAsync(
        ChatRequest? request, Caller caller, StreamingChatConversations conversations, StreamingChatServices services, CancellationToken cancellationToken)
    {
        var errors = StreamingChatConversations.Validate(request);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        var start = await conversations.StartAsync(request!, caller, services.Runner, services.Agents, cancellationToken);
        var heartbeat = services.Streaming.Value.HeartbeatInterval;
        switch (start)
        {
            case ChatStart.Invalid invalid:
                return Invalid(invalid.Errors);
            case ChatStart.NotFound notFound:
                return ThreadNotFound(notFound);
            case ChatStart.Busy busy:
                // 409, and the body is still the dialect's stream: the seed's client never looks at the status.
                var error = StreamingChatEvents.Failure(busy.Agent, busy.ThreadId, busy.ActiveRunId, "run_active", busy.Detail);
                return new WithStatus(StatusCodes.Status409Conflict, new ServerSentEventsStream(One(StreamingChatEvents.ToSseItem(error)), heartbeat));
            default:
                // The response ends with the run; the run does not end with the response.
                var started = (ChatStart.Started)start;
                return new ServerSentEventsStream(started.Events.ToSseItemsAsync(CancellationToken.None), heartbeat);
        }
    }

    private static async Task<Results<Ok<ChatResponse>, ValidationProblem, ProblemHttpResult>> ChatAsync(
        ChatRequest? request, Caller caller, StreamingChatConversations conversations, StreamingChatServices services, CancellationToken cancellationToken)
    {
        var errors = StreamingChatConversations.Validate(request);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        var start = await conversations.StartAsync(request!, caller, services.Runner, services.Agents, cancellationToken);
        if (start is ChatStart.Invalid invalid)
        {
            return Invalid(invalid.Errors);
        }

        if (start is ChatStart.NotFound notFound)
        {
            return ThreadNotFound(notFound);
        }

        if (start is ChatStart.Busy busy)
        {
            return TypedResults.Problem(busy.Detail, statusCode: StatusCodes.Status409Conflict, title: "A run is active",
                extensions: new Dictionary<string, object?> { ["code"] = "run_active", ["thread_id"] = busy.ThreadId, ["active_run_id"] = busy.ActiveRunId });
        }

        var started = (ChatStart.Started)start;
        var calls = new List<ChatToolCall>();
        var text = new System.Text.StringBuilder();
        await foreach (var chatEvent in started.Events.WithCancellation(cancellationToken))
        {
            switch (chatEvent.EventType)
            {
                case ChatEventTypes.ChatChunk:
                    text.Append(chatEvent.Content);
                    break;
                case ChatEventTypes.ToolCallComplete or ChatEventTypes.ToolCallError:
                    calls.Add(chatEvent.ToolCall!);
                    break;
                case ChatEventTypes.ChatComplete:
                    return TypedResults.Ok(new ChatResponse(
                        chatEvent.FinalResponse ?? text.ToString(), calls, started.Agent, started.ThreadId, started.RunId, chatEvent.Usage, chatEvent.StopReason, chatEvent.Timestamp));
                case ChatEventTypes.Error:
                    // 503 model unavailable or interrupted, 502 model error, 409 cancelled, 500 else (RunFailureStatus).
                    return TypedResults.Problem(chatEvent.Error, statusCode: RunFailureStatus.For(chatEvent.Code), title: "The chat failed",
                        extensions: new Dictionary<string, object?>
                        {
                            ["code"] = chatEvent.Code,
                            ["thread_id"] = started.ThreadId,
                            ["run_id"] = started.RunId,
                            ["partial_response"] = text.ToString(),
                        });
            }
        }

        throw new InvalidOperationException($"The events of run '{started.RunId}' ended before the run did.");
    }

    private static async Task<IResult> ListAgentsAsync(
        StreamingChatConversations conversations, AgentServices services, CancellationToken cancellationToken)
    {
        var models = await services.Silo.GetModelsAsync(cancellationToken);
        var agents = await services.Catalog.ListAsync(cancellationToken);
        var infos = new List<AgentInfo>(agents.Count);
        foreach (var agent in agents)
        {
            infos.Add(AgentInfo.From(agent, await conversations.DisplayNameAsync(agent.Name, cancellationToken), models.DefaultModel, [.. models.Tools]));
        }

        return TypedResults.Ok(new AgentListResponse([.. infos]));
    }

    private static async Task<Results<Ok<AgentSavedResponse>, ValidationProblem>> SaveAgentAsync(
        string agentName, AgentConfigRequest? request, StreamingChatConversations conversations, AgentServices services,
        CancellationToken cancellationToken)
    {
        var models = await services.Silo.GetModelsAsync(cancellationToken);
        var tools = models.Tools;
        var catalog = services.Catalog;
        request ??= new AgentConfigRequest(null, null, null, null, null, null);
        var errors = new Dictionary<string, string[]>();
        if (!StreamingChatConversations.IsValidAgentName(agentName))
        {
            errors["agent_name"] = [$"agent_name must be 1-{StreamingChatConversations.MaxAgentNameLength} characters: letters, digits, '_', '-' or '.'."];
        }

        if (request.Name is { } name && (string.IsNullOrWhiteSpace(name) || name.Length > MaxDisplayNameLength))
        {
            errors["name"] = [$"name must be 1-{MaxDisplayNameLength} characters."];
        }

        if (request.Instructions is { } instructions && (string.IsNullOrWhiteSpace(instructions) || instructions.Length > MaxInstructionsLength))
        {
            errors["instructions"] = [$"instructions must be 1-{MaxInstructionsLength} characters."];
        }

        if (request.Model is { } model && (string.IsNullOrWhiteSpace(model) || model.Length > MaxModelNameLength))
        {
            errors["model"] = [$"model must be 1-{MaxModelNameLength} characters."];
        }

        if (request.MaxParallelTools is < 1 or > 64)
        {
            errors["max_parallel_tools"] = ["max_parallel_tools must be between 1 and 64."];
        }

        if (request.ToolCallTimeout is { } timeout && (!double.IsFinite(timeout) || timeout <= 0 || timeout > 3600))
        {
            errors["tool_call_timeout"] = ["tool_call_timeout must be more than 0 and at most 3600 seconds."];
        }

        for (var i = 0; i < (request.Tools?.Count ?? 0); i++)
        {
            if (request.Tools![i] is not { } tool || !tools.Contains(tool, StringComparer.Ordinal))
            {
                errors[$"tools[{i}]"] = [$"No tool is named '{request.Tools[i]}'; available: {string.Join(", ", tools)}."];
            }
        }

        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        // Fields left out keep the agent's current value (or the default for a new agent).
        var existing = await catalog.GetAsync(agentName, cancellationToken);
        var agent = existing ?? new AgentDefinition(agentName);
        agent = agent with
        {
            Instructions = request.Instructions ?? agent.Instructions,
            Model = request.Model ?? agent.Model,
            MaxParallelTools = request.MaxParallelTools ?? agent.MaxParallelTools,
            ToolTimeout = request.ToolCallTimeout is { } seconds ? TimeSpan.FromSeconds(seconds) : agent.ToolTimeout,
            Tools = request.Tools ?? agent.Tools,
        };
        await catalog.UpsertAsync(agent, cancellationToken);
        if (request.Name is not null || existing is null)
        {
            await conversations.SetDisplayNameAsync(agentName, request.Name, cancellationToken);
        }

        var verb = existing is null ? "created" : "updated";
        return TypedResults.Ok(new AgentSavedResponse(
            $"Agent '{agentName}' {verb} successfully", AgentInfo.From(agent, await conversations.DisplayNameAsync(agentName, cancellationToken), models.DefaultModel, [.. tools])));
    }

    private static ProblemHttpResult ThreadNotFound(ChatStart.NotFound notFound) =>
        TypedResults.Problem(notFound.Detail, statusCode: StatusCodes.Status404NotFound, title: "Thread not found",
            extensions: new Dictionary<string, object?> { ["code"] = "thread_not_found", ["thread_id"] = notFound.ThreadId });

    private static ValidationProblem Invalid(Dictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, detail: string.Join(" ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));

    private static IAsyncEnumerable<SseItem<string>> One(SseItem<string> item) => new[] { item }.ToAsyncEnumerable();

    /// <summary>Sends <paramref name="inner"/> with another status code.</summary>
    private sealed class WithStatus(int statusCode, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = statusCode;
            return inner.ExecuteAsync(httpContext);
        }
    }
}

/// <summary>Dependencies of the seed 003 agent handlers, bundled.</summary>
public readonly record struct AgentServices(IAgentCatalog Catalog, SiloCatalog Silo);

/// <summary>Dependencies of the seed 003 chat handlers, bundled.</summary>
public readonly record struct StreamingChatServices(ThreadRunner Runner, IAgentCatalog Agents, IOptions<StreamingOptions> Streaming);
