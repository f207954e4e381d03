using Conversations.Gateway.Catalog;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Compat.OpenAi;

/// <summary>
/// OpenAI Chat Completions (seeds 002 and 004): <c>POST /v1/chat/completions</c>, streaming and not, over a thread
/// of ours, and <c>GET /v1/models</c>. A projection of the thread's run events; it never calls a model itself.
/// </summary>
public static class ChatCompletionsApi
{
    /// <summary>Request and response header naming the thread (request: continue it; response: the thread used).</summary>
    public const string ThreadIdHeader = "X-Thread-Id";

    /// <summary>Request header asking for seed 004's status chunks (the body field <c>stream_status</c> does the same).</summary>
    public const string StreamStatusHeader = "X-Stream-Status";

    public static IEndpointRouteBuilder MapOpenAiCompatApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("OpenAI compatible");
        v1.MapPost("/chat/completions", CreateChatCompletionAsync).WithName("OpenAiChatCompletions")
            .WithSummary("OpenAI Chat Completions over a thread: chat.completion.chunk SSE with \"stream\": true, a chat.completion otherwise.")
            .Accepts<ChatCompletionRequest>("application/json");
        v1.MapGet("/models", ListModelsAsync).WithName("OpenAiListModels").WithSummary("The registered models (the default first) and the agents, in OpenAI's list shape.");
        v1.MapGet("/models/{model}", GetModelAsync).WithName("OpenAiGetModel").WithSummary("One model of the list.");
        return app;
    }

    private static async Task<IResult> CreateChatCompletionAsync(
        HttpContext httpContext, [AsParameters] OpenAiServices services, CancellationToken cancellationToken)
    {
        var (request, readError) = await CompatRuns.ReadBodyAsync<ChatCompletionRequest>(httpContext.Request, cancellationToken);
        if (request is null)
        {
            return readError!;
        }

        var (run, invalid) = await ValidateAsync(request, httpContext.Request.Headers, services, cancellationToken);
        if (run is null)
        {
            return invalid!;
        }

        var (started, startError) = await CompatRuns.StartAsync(httpContext, ThreadIdHeader, run, services.Runner, services.Agents, "agent", cancellationToken);
        if (started is null)
        {
            return startError!;
        }

        var stream = request.Stream == true;
        var projection = new ChatCompletionProjection(new ChunkStreamSettings
        {
            CompletionId = ChatCompletionProjection.CompletionIdFor(started.RunId),
            Created = services.Time.GetUtcNow().ToUnixTimeSeconds(),
            Model = request.Model ?? (await services.Silo.GetModelsAsync(cancellationToken)).DefaultModel,
            ThreadId = started.ThreadId,
            StatusChunks = stream && WantsStatus(request, httpContext.Request.Headers),
            UsageChunk = request.StreamOptions?.IncludeUsage == true,
        });
        if (stream)
        {
            // The response ends with the run; the run does not end with the response.
            return new ServerSentEventsStream(started.Events.ToChunkSseAsync(projection, CancellationToken.None), services.Streaming.Value.HeartbeatInterval);
        }

        var (completion, failure) = await started.Events.CollectAsync(projection, cancellationToken);
        return completion is not null ? TypedResults.Json(completion, OpenAiJson.Options) : CompatRuns.RunFailed(failure!);
    }

    private static async Task<(CompatRuns.RunRequest? Run, IResult? Error)> ValidateAsync(
        ChatCompletionRequest request, IHeaderDictionary headers, OpenAiServices services, CancellationToken cancellationToken)
    {
        if (request.Messages is not { Count: > 0 } messages)
        {
            return (null, CompatRuns.Invalid("'messages' is required and must hold at least one message.", "messages"));
        }

        if (messages.Count > CompatRuns.MaxMessages)
        {
            return (null, CompatRuns.Invalid($"'messages' holds at most {CompatRuns.MaxMessages} messages.", "messages"));
        }

        var history = new List<NewMessage>();
        string? last = null;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message is null)
            {
                return (null, CompatRuns.Invalid($"'messages[{i}]' must be a message object.", $"messages[{i}]"));
            }

            var role = message.Role == "developer" ? MessageRoles.System : message.Role;
            if (role is null || !MessageRoles.IsKnown(role))
            {
                return (null, CompatRuns.Invalid($"'messages[{i}].role' must be 'system', 'developer', 'user', 'assistant' or 'tool'.", $"messages[{i}].role"));
            }

            var text = CompatRuns.ContentText(message.Content, $"messages[{i}].content", out var contentError);
            if (text is null)
            {
                return (null, contentError);
            }

            if (i == messages.Count - 1)
            {
                if (role != MessageRoles.User || string.IsNullOrWhiteSpace(text))
                {
                    return (null, CompatRuns.Invalid("The last message must be a user message with text: it is the turn to run.", "messages"));
                }

                last = text;
            }
            else if (role != MessageRoles.Tool && text.Length > 0)
            {
                // A new thread's history. Tool results and tool-call requests of client-side tools are not kept:
                // our agent's tools run on the server, and a tool result without its call would be dropped anyway.
                history.Add(new NewMessage(role, text));
            }
        }

        var headerThreadId = headers[ThreadIdHeader].ToString();
        var threadId = string.IsNullOrEmpty(headerThreadId) ? request.ThreadId : headerThreadId;
        if (request.ThreadId is not null && threadId != request.ThreadId)
        {
            return (null, CompatRuns.Invalid($"The '{ThreadIdHeader}' header and 'thread_id' name different threads.", "thread_id"));
        }

        if (threadId is not null && !CompatRuns.IsValidThreadId(threadId))
        {
            return (null, CompatRuns.Invalid("'thread_id' must be 1-128 characters: letters, digits, '_', '-', '.' or ':'.", "thread_id"));
        }

        if (request.Temperature is < 0 or > 2)
        {
            return (null, CompatRuns.Invalid("'temperature' must be between 0 and 2.", "temperature"));
        }

        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1)
        {
            var param = request.MaxCompletionTokens is not null ? "max_completion_tokens" : "max_tokens";
            return (null, CompatRuns.Invalid($"'{param}' must be at least 1.", param));
        }

        if (request.Agent is { Length: 0 or > 128 })
        {
            return (null, CompatRuns.Invalid("'agent' must be 1-128 characters.", "agent"));
        }

        var (agent, model) = await ChooseAgentAndModelAsync(request, services, cancellationToken);
        var send = new SendMessage(last!) { Agent = agent, Model = model, Temperature = request.Temperature, MaxTokens = maxTokens };
        return (new CompatRuns.RunRequest(threadId, history, send), null);
    }

    /// <summary>
    /// <c>agent</c> picks the agent. Without it, a <c>model</c> that names an agent picks that agent (all an unmodified
    /// OpenAI client can set); a <c>model</c> we list runs this turn on that model; any other model name is ignored and
    /// the agent's model runs (the response reports which).
    /// </summary>
    private static async Task<(string? Agent, string? Model)> ChooseAgentAndModelAsync(
        ChatCompletionRequest request, OpenAiServices services, CancellationToken cancellationToken)
    {
        if (request.Agent is not null || string.IsNullOrWhiteSpace(request.Model))
        {
            return (request.Agent, null);
        }

        if (await services.Agents.GetAsync(request.Model, cancellationToken) is not null)
        {
            return (request.Model, null);
        }

        var models = await ListedModelsAsync(services, cancellationToken);
        return (null, models.Contains(request.Model) ? request.Model : null);
    }

    private static bool WantsStatus(ChatCompletionRequest request, IHeaderDictionary headers) =>
        request.StreamStatus == true
        || (bool.TryParse(headers[StreamStatusHeader].ToString(), out var header) && header);

    private static async Task<IResult> ListModelsAsync([AsParameters] OpenAiServices services, CancellationToken cancellationToken) =>
        TypedResults.Json(new ModelList(await ModelInfosAsync(services, cancellationToken)), OpenAiJson.Options);

    private static async Task<IResult> GetModelAsync(string model, [AsParameters] OpenAiServices services, CancellationToken cancellationToken)
    {
        var info = (await ModelInfosAsync(services, cancellationToken)).FirstOrDefault(m => m.Id == model);
        return info is null
            ? CompatRuns.Error(StatusCodes.Status404NotFound, $"The model '{model}' does not exist.", "invalid_request_error", "model", "model_not_found")
            : TypedResults.Json(info, OpenAiJson.Options);
    }

    /// <summary>The registered models (the silos' model catalog: never a key or an endpoint), then the agents, which a request's <c>model</c> may name.</summary>
    private static async Task<IReadOnlyList<ModelInfo>> ModelInfosAsync(OpenAiServices services, CancellationToken cancellationToken)
    {
        var agents = await services.Agents.ListAsync(cancellationToken);
        var catalog = await services.Silo.GetModelsAsync(cancellationToken);
        var list = catalog.Models.Select(m => new ModelInfo(m.Name, 0, "conversations")).ToList();
        list.AddRange(agents.Where(a => list.All(m => m.Id != a.Name)).Select(a => new ModelInfo(a.Name, 0, "conversations-agent")));
        return list;
    }

    /// <summary>The model names a request may choose: the registered models and those the agents name.</summary>
    private static async Task<IReadOnlyList<string>> ListedModelsAsync(OpenAiServices services, CancellationToken cancellationToken)
    {
        var agents = await services.Agents.ListAsync(cancellationToken);
        var catalog = await services.Silo.GetModelsAsync(cancellationToken);
        return [.. catalog.Models.Select(m => m.Name).Concat(agents.Select(a => a.Model).OfType<string>()).Distinct(StringComparer.Ordinal)];
    }
}

/// <summary>Dependencies of the OpenAI-shaped handlers, bundled.</summary>
public readonly record struct OpenAiServices(
    ThreadRunner Runner, IAgentCatalog Agents, SiloCatalog Silo, IOptions<StreamingOptions> Streaming, TimeProvider Time);
