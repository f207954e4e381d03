using Conversations.Grains.Abstractions;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Compat.OpenAi;
using Conversations.Gateway.Threads;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Compat.Langbase;

/// <summary>
/// Seed 002's Langbase surface: <c>POST /v1/pipes/run</c> (the OpenAI chunk projection, with the <c>lb-thread-id</c>
/// header), Langbase threads and their messages, and <c>GET /</c>. Errors use OpenAI's error shape.
/// </summary>
public static partial class LangbaseApi
{
    /// <summary>The response header naming the thread a run used or created.</summary>
    public const string ThreadIdHeader = "lb-thread-id";

    public static IEndpointRouteBuilder MapLangbaseCompatApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", GetStatus).WithName("LangbaseServerStatus").WithSummary("Server status (seed 002's GET /).").WithTags("Langbase compatible");
        var v1 = app.MapGroup("/v1").WithTags("Langbase compatible");
        v1.MapPost("/pipes/run", RunPipeAsync).WithName("LangbasePipeRun")
            .WithSummary("Run the agent on a thread, Langbase style: chat.completion.chunk SSE with \"stream\": true; lb-thread-id on every response.")
            .Accepts<PipeRunRequest>("application/json");
        v1.MapPost("/threads", CreateThreadAsync).WithName("LangbaseCreateThread").WithSummary("Create a thread with optional id, metadata and messages.")
            .Accepts<LangbaseCreateThreadRequest>("application/json");
        v1.MapPost("/threads/{threadId}/messages", AppendMessagesAsync).WithName("LangbaseAppendMessages")
            .WithSummary("Append messages to a thread without running the agent.").Accepts<LangbaseAppendRequest>("application/json")
            .RequireThreadAccess(ThreadNotFound);
        v1.MapGet("/threads/{threadId}/messages", ListMessagesAsync).WithName("LangbaseListMessages").WithSummary("Every message of a thread, chronological.")
            .RequireThreadAccess(ThreadNotFound);
        return app;
    }

    private static ServerStatus GetStatus(TimeProvider time) =>
        new("healthy", "Conversations is running; Langbase-compatible endpoints are under /v1.", time.GetUtcNow());

    private static async Task<IResult> RunPipeAsync(
        HttpContext httpContext, IGrainFactory grains, ThreadAccess access, [AsParameters] OpenAiServices services, CancellationToken cancellationToken)
    {
        var (request, readError) = await CompatRuns.ReadBodyAsync<PipeRunRequest>(httpContext.Request, cancellationToken);
        if (request is null)
        {
            return readError!;
        }

        if (request.ThreadId is not null)
        {
            // Known before anything can fail, so every response of a continued thread names it.
            if (!CompatRuns.IsValidThreadId(request.ThreadId))
            {
                return CompatRuns.Invalid("'threadId' must be 1-128 characters: letters, digits, '_', '-', '.' or ':'.", "threadId");
            }

            httpContext.Response.Headers[ThreadIdHeader] = request.ThreadId;
        }

        var variables = ReadVariables(request.Variables, out var variablesError);
        if (variables is null)
        {
            return variablesError!;
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            return CompatRuns.Invalid("'messages' is required and must hold at least one message.", "messages");
        }

        var converted = ConvertMessages(messages, variables, allowTool: true, out var messagesError);
        if (converted is null)
        {
            return messagesError!;
        }

        if (converted[^1] is not { Role: MessageRoles.User } last || string.IsNullOrWhiteSpace(last.Content))
        {
            return CompatRuns.Invalid("The last message must be a user message with text: it is the turn to run.", "messages");
        }

        // Langbase appends the messages of a request to the thread it continues; the last one runs.
        IReadOnlyList<NewMessage> prior = [.. converted.Take(converted.Count - 1).Where(m => m.Role != MessageRoles.Tool && m.Content.Length > 0)];
        if (request.ThreadId is not null && !await access.MayTouchAsync(Caller.Of(httpContext), request.ThreadId, cancellationToken))
        {
            // Someone else's thread: nothing is appended, and it is answered as none.
            return ThreadNotFound(request.ThreadId);
        }

        if (request.ThreadId is not null && prior.Count > 0)
        {
            switch (await grains.GetGrain<IThreadGrain>(request.ThreadId).AppendMessagesAsync(prior, cancellationToken))
            {
                case AppendMessagesResult.Appended:
                    prior = [];
                    break;
                case AppendMessagesResult.Rejected rejected:
                    return CompatRuns.RunActive(rejected.ActiveRunId);
                case AppendMessagesResult.LimitExceeded exceeded:
                    return CompatRuns.ThreadFull(exceeded.Limit);
            }
        }

        var run = new CompatRuns.RunRequest(request.ThreadId, prior, new SendMessage(last.Content) { Agent = request.Name });
        var (started, startError) = await CompatRuns.StartAsync(httpContext, ThreadIdHeader, run, services.Runner, services.Agents, "name", cancellationToken);
        if (started is null)
        {
            return startError!;
        }

        var projection = new ChatCompletionProjection(new ChunkStreamSettings
        {
            CompletionId = ChatCompletionProjection.CompletionIdFor(started.RunId),
            Created = services.Time.GetUtcNow().ToUnixTimeSeconds(),
            Model = (await services.Silo.GetModelsAsync(cancellationToken)).DefaultModel,
            // Exactly the seed's chunks: no role chunk, no thread_id (the header carries it).
            RoleChunk = false,
        });
        if (request.Stream == true)
        {
            return new ServerSentEventsStream(started.Events.ToChunkSseAsync(projection, CancellationToken.None), services.Streaming.Value.HeartbeatInterval);
        }

        var (completion, failure) = await started.Events.CollectAsync(projection, cancellationToken);
        if (completion is null)
        {
            return CompatRuns.RunFailed(failure!);
        }

        return TypedResults.Json(
            new PipeRunResponse
            {
                Completion = completion.Choices[0].Message.Content ?? string.Empty,
                ThreadId = started.ThreadId,
                Id = completion.Id,
                Created = completion.Created,
                Model = completion.Model,
                Choices = completion.Choices,
                Usage = completion.Usage,
                SystemFingerprint = completion.SystemFingerprint,
                Raw = completion,
            },
            OpenAiJson.Options);
    }

    private static async Task<IResult> CreateThreadAsync(HttpContext httpContext, IGrainFactory grains, TimeProvider time, CancellationToken cancellationToken)
    {
        LangbaseCreateThreadRequest? request = new();
        if (httpContext.Request.ContentLength is not 0)
        {
            (request, var readError) = await CompatRuns.ReadBodyAsync<LangbaseCreateThreadRequest>(httpContext.Request, cancellationToken);
            if (request is null)
            {
                return readError!;
            }
        }

        if (request.ThreadId is not null && !CompatRuns.IsValidThreadId(request.ThreadId))
        {
            return CompatRuns.Invalid("'threadId' must be 1-128 characters: letters, digits, '_', '-', '.' or ':'.", "threadId");
        }

        if (request.Metadata is { } metadata
            && (metadata.Count > ThreadsApi.MaxMetadataPairs || metadata.Any(p => p.Key.Length is 0 or > 64 || p.Value is null || p.Value.Length > 512
                || p.Key.Contains('\0', StringComparison.Ordinal) || p.Value.Contains('\0', StringComparison.Ordinal))))
        {
            return CompatRuns.Invalid($"'metadata' holds at most {ThreadsApi.MaxMetadataPairs} string pairs: keys 1-64 characters, values at most 512, neither with a NUL character.", "metadata");
        }

        var messages = ConvertMessages(request.Messages ?? [], new Dictionary<string, string>(), allowTool: false, out var messagesError);
        if (messages is null)
        {
            return messagesError!;
        }

        var threadId = request.ThreadId ?? Ids.NewThreadId();
        var created = await grains.GetGrain<IThreadGrain>(threadId).CreateAsync(
            new CreateThread { Metadata = request.Metadata, Messages = messages, Owner = Caller.Of(httpContext).Owner }, cancellationToken);
        if (created is null)
        {
            return CompatRuns.Error(StatusCodes.Status409Conflict, $"A thread with id '{threadId}' already exists.", "invalid_request_error", "threadId", "thread_exists");
        }

        httpContext.Response.Headers[ThreadIdHeader] = threadId;
        return TypedResults.Json(new LangbaseThread(created.Id, created.CreatedAt.ToUnixTimeSeconds(), created.Metadata), OpenAiJson.Options);
    }

    private static async Task<IResult> AppendMessagesAsync(string threadId, HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken)
    {
        // The seed sends {"messages": [...]}; Langbase's REST reference also shows a bare array.
        List<LangbaseMessageInput?>? input;
        if (httpContext.Request.ContentLength is 0)
        {
            input = null;
        }
        else
        {
            // A document, not a JsonNode: its elements keep the bytes as sent, so text that is not valid UTF-8 is
            // refused naming its field (a JsonNode would re-encode it with replacement characters and store those).
            var (document, readError) = await CompatRuns.ReadBodyAsync<JsonDocument>(httpContext.Request, cancellationToken);
            if (document is null)
            {
                return readError!;
            }

            using (document)
            {
                var body = document.RootElement;
                try
                {
                    input = body.ValueKind == JsonValueKind.Array
                        ? body.Deserialize<List<LangbaseMessageInput?>>(OpenAiJson.Options)
                        : body.ValueKind == JsonValueKind.Object
                            ? body.Deserialize<LangbaseAppendRequest>(OpenAiJson.Options)?.Messages
                            : throw new JsonException("The request body must be a JSON object.");
                }
                catch (JsonException ex) when (body.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
                {
                    return CompatRuns.Invalid(ex.Message, null);
                }
                catch (JsonException ex)
                {
                    // A bare array is the messages themselves: its paths are under 'messages'.
                    var error = body.ValueKind == JsonValueKind.Array
                        ? JsonInputErrors.Describe(ex, typeof(List<LangbaseMessageInput?>), OpenAiJson.Options, fieldPrefix: "messages")
                        : JsonInputErrors.Describe(ex, typeof(LangbaseAppendRequest), OpenAiJson.Options);
                    return CompatRuns.Invalid(error.Message(quoteField: true), error.Field);
                }

                input = input?.Select(m => m is null ? null : m with { Content = m.Content?.Clone(), ToolCalls = m.ToolCalls?.Clone() }).ToList();
            }
        }

        if (input is not { Count: > 0 })
        {
            return CompatRuns.Invalid("'messages' is required and must hold at least one message.", "messages");
        }

        var messages = ConvertMessages(input, new Dictionary<string, string>(), allowTool: false, out var messagesError);
        if (messages is null)
        {
            return messagesError!;
        }

        return await grains.GetGrain<IThreadGrain>(threadId).AppendMessagesAsync(messages, cancellationToken) switch
        {
            AppendMessagesResult.Appended appended => TypedResults.Json(appended.Messages.Select(m => LangbaseMessage.From(threadId, m)).ToList(), OpenAiJson.Options),
            AppendMessagesResult.Rejected rejected => CompatRuns.RunActive(rejected.ActiveRunId),
            AppendMessagesResult.LimitExceeded exceeded => CompatRuns.ThreadFull(exceeded.Limit),
            _ => ThreadNotFound(threadId),
        };
    }

    private static async Task<IResult> ListMessagesAsync(string threadId, ThreadRunner runner, CancellationToken cancellationToken)
    {
        var history = await runner.ReadHistoryAsync(threadId, cancellationToken);
        return history is null
            ? ThreadNotFound(threadId)
            : TypedResults.Json(history.Select(m => LangbaseMessage.From(threadId, m)).ToList(), OpenAiJson.Options);
    }

    /// <summary>
    /// Messages as the thread stores them, with <c>{{name}}</c> replaced by the variable's value. Roles user, assistant
    /// and system; <c>tool</c> only where the caller drops tool results (they cannot be stored without their call).
    /// </summary>
    private static List<NewMessage>? ConvertMessages(
        List<LangbaseMessageInput?> input, IReadOnlyDictionary<string, string> variables, bool allowTool, out IResult? error)
    {
        error = null;
        if (input.Count > CompatRuns.MaxMessages)
        {
            error = CompatRuns.Invalid($"'messages' holds at most {CompatRuns.MaxMessages} messages.", "messages");
            return null;
        }

        var messages = new List<NewMessage>(input.Count);
        for (var i = 0; i < input.Count; i++)
        {
            if (input[i] is not { } message)
            {
                error = CompatRuns.Invalid($"'messages[{i}]' must be a message object.", $"messages[{i}]");
                return null;
            }

            var allowed = message.Role is MessageRoles.User or MessageRoles.Assistant or MessageRoles.System || (allowTool && message.Role == MessageRoles.Tool);
            if (!allowed)
            {
                error = CompatRuns.Invalid(
                    allowTool
                        ? $"'messages[{i}].role' must be 'system', 'user', 'assistant' or 'tool'."
                        : $"'messages[{i}].role' must be 'system', 'user' or 'assistant' (tool results cannot be stored without the call they answer).",
                    $"messages[{i}].role");
                return null;
            }

            var text = CompatRuns.ContentText(message.Content, $"messages[{i}].content", out error);
            if (text is null)
            {
                return null;
            }

            messages.Add(new NewMessage(message.Role!, variables.Count == 0 ? text : Substitute(text, variables)));
        }

        return messages;
    }

    private static Dictionary<string, string>? ReadVariables(JsonElement? variables, out IResult? error)
    {
        try
        {
            return ReadVariablesCore(variables, out error);
        }
        catch (InvalidOperationException ex) when (JsonInputErrors.TextProblem(ex) is { } problem)
        {
            // A variable's name that is not text (the values are checked one by one).
            error = CompatRuns.Invalid($"A name in 'variables' {problem}.", "variables");
            return null;
        }
    }

    private static Dictionary<string, string>? ReadVariablesCore(JsonElement? variables, out IResult? error)
    {
        error = null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (variables is not { } element || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return values;
        }

        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.String && CompatRuns.Text(property.Value, $"variables.{property.Name}", out error) is null)
                {
                    return null;
                }

                if (ScalarText(property.Value) is not { } value)
                {
                    error = CompatRuns.Invalid($"'variables.{property.Name}' must be a string, number or boolean.", $"variables.{property.Name}");
                    return null;
                }

                values[property.Name] = value;
            }

            return values;
        }

        if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object
                    || !item.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                    || !item.TryGetProperty("value", out var value) || value.ValueKind is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False))
                {
                    error = CompatRuns.Invalid($"'variables[{i}]' must be an object with a string 'name' and a 'value'.", $"variables[{i}]");
                    return null;
                }

                if (CompatRuns.Text(name, $"variables[{i}].name", out error) is not { } key
                    || (value.ValueKind == JsonValueKind.String && CompatRuns.Text(value, $"variables[{i}].value", out error) is null))
                {
                    return null;
                }

                values[key] = ScalarText(value)!;
                i++;
            }

            return values;
        }

        error = CompatRuns.Invalid("'variables' must be an object of name → value, or an array of {name, value}.", "variables");
        return null;
    }

    private static string? ScalarText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        _ => null,
    };

    /// <summary>Replaces <c>{{name}}</c> (spaces inside the braces allowed) with the variable's value; unknown names stay.</summary>
    private static string Substitute(string text, IReadOnlyDictionary<string, string> variables) =>
        VariablePattern().Replace(text, match => variables.TryGetValue(match.Groups[1].Value, out var value) ? value : match.Value);

    private static IResult ThreadNotFound(string threadId) =>
        CompatRuns.Error(StatusCodes.Status404NotFound, $"No thread has id '{threadId}'.", "invalid_request_error", "threadId", "thread_not_found");

    [GeneratedRegex(@"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")]
    private static partial Regex VariablePattern();
}
