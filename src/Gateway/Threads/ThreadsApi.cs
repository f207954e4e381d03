using Conversations.Gateway.Auth;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions;
using System.Globalization;
using System.Text.RegularExpressions;
using Conversations.Gateway.Streaming;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Conversations.Gateway.Threads;

/// <summary>The native thread API: threads, messages, runs and the thread event stream.</summary>
public static partial class ThreadsApi
{
    public const int MaxMessageLength = MessageText.MaxLength;
    public const int MaxInitialMessages = 100;
    public const int MaxMetadataPairs = 16;
    public const int DefaultPageSize = 20;
    public const int MaxPageSize = 100;

    public static IEndpointRouteBuilder MapThreadsApi(this IEndpointRouteBuilder app)
    {
        // A thread of someone else's is answered as none (404) on every /threads/{threadId}… route.
        var threads = app.MapGroup("/threads").WithTags("Threads").RequireThreadAccess(ThreadNotFound);
        threads.MapPost("/", CreateThreadAsync).WithName("CreateThread").WithSummary("Create a thread, optionally with metadata and initial messages.");
        threads.MapGet("/{threadId}", GetThreadAsync).WithName("GetThread").WithSummary("Get a thread.");
        threads.MapGet("/{threadId}/messages", ListMessagesAsync).WithName("ListMessages").WithSummary("List a thread's messages in chronological order, paged.")
            // limit is bound as text so a bad value is named in words (see ListMessagesAsync); the document says what it is.
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                if (operation.Parameters?.OfType<OpenApiParameter>().FirstOrDefault(p => p.Name == "limit") is { } parameter)
                {
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "1", Maximum = MaxPageSize.ToString(CultureInfo.InvariantCulture) };
                    parameter.Description = $"At most this many messages, 1-{MaxPageSize} ({DefaultPageSize} by default).";
                }

                return Task.CompletedTask;
            });
        threads.MapPost("/{threadId}/messages", SendMessageAsync).WithName("SendMessage")
            .WithSummary("Send a user message and run the agent: an SSE stream of the run's events with \"stream\": true, the final result as JSON otherwise.");
        threads.MapGet("/{threadId}/events", StreamEventsAsync).WithName("StreamThreadEvents")
            .WithSummary("Join the thread's event stream live; Last-Event-ID (or, without it, ?after=N) resumes after that sequence.");
        threads.MapGet("/{threadId}/runs", ListRunsAsync).WithName("ListRuns").WithSummary("List a thread's runs, newest first (queued runs first), paged with limit and offset.");
        threads.MapGet("/{threadId}/runs/{runId}/events", StreamRunEventsAsync).WithName("StreamRunEvents")
            .WithSummary("Join one run's stream: its events from its start (or after Last-Event-ID), then live; ends with the run.");
        threads.MapPost("/{threadId}/runs/{runId}/tool-outputs", SubmitToolOutputsAsync).WithName("SubmitToolOutputs")
            .WithSummary("Give a run waiting on run.requires_action the outputs of its client tool calls (all or none are taken).");
        threads.MapGet("/{threadId}/runs/{runId}", GetRunAsync).WithName("GetRun").WithSummary("Get a run.");
        threads.MapPost("/{threadId}/runs/{runId}/cancel", CancelRunAsync).WithName("CancelRun").WithSummary("Cancel a run (idempotent).");
        MapThreadManagement(threads);
        return app;
    }

    private static async Task<Results<Created<ThreadSnapshot>, ValidationProblem, ProblemHttpResult>> CreateThreadAsync(
        CreateThreadRequest? request, HttpContext httpContext, IGrainFactory grains, CancellationToken cancellationToken)
    {
        request ??= new CreateThreadRequest(null, null, null);
        var errors = new Dictionary<string, string[]>();
        if (request.ThreadId is not null && !ThreadIdPattern().IsMatch(request.ThreadId))
        {
            errors["threadId"] = ["threadId must be 1-128 characters: letters, digits, '_', '-', '.' or ':'."];
        }

        ValidateMetadata(request.Metadata, errors);
        var messages = new List<NewMessage>();
        if (request.Messages is { Count: > MaxInitialMessages })
        {
            errors["messages"] = [$"At most {MaxInitialMessages} initial messages are allowed."];
        }

        for (var i = 0; i < (request.Messages?.Count ?? 0); i++)
        {
            var message = request.Messages![i];
            if (message is null)
            {
                errors[$"messages[{i}]"] = ["A message is required."];
                continue;
            }

            if (message.Role is not (MessageRoles.User or MessageRoles.Assistant or MessageRoles.System))
            {
                errors[$"messages[{i}].role"] = ["role must be 'user', 'assistant' or 'system'."];
            }

            ValidateContent(message.Content, $"messages[{i}].content", errors);
            if (message.Role is not null && message.Content is not null)
            {
                messages.Add(new NewMessage(message.Role, message.Content));
            }
        }

        if (request.Agent is { Length: 0 or > 128 })
        {
            errors["agent"] = ["agent must be 1-128 characters."];
        }
        else if (request.Agent is { } agentName
            && await grains.GetGrain<IAgentCatalogGrain>(IAgentCatalogGrain.Key).GetAsync(agentName, cancellationToken) is null)
        {
            errors["agent"] = [$"No agent is named '{agentName}'."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var threadId = request.ThreadId ?? Ids.NewThreadId();
        var created = await grains.GetGrain<IThreadGrain>(threadId).CreateAsync(
            new CreateThread { Metadata = request.Metadata, Messages = messages, Agent = request.Agent, Owner = Caller.Of(httpContext).Owner }, cancellationToken);
        return created is null
            ? TypedResults.Problem($"A thread with id '{threadId}' already exists.", statusCode: StatusCodes.Status409Conflict, title: "Thread exists")
            : TypedResults.Created($"/threads/{Uri.EscapeDataString(threadId)}", created);
    }

    private static async Task<Results<Ok<ThreadSnapshot>, ProblemHttpResult>> GetThreadAsync(
        string threadId, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var thread = await grains.GetGrain<IThreadGrain>(threadId).GetAsync(cancellationToken);
        return thread is null ? ThreadNotFound(threadId) : TypedResults.Ok(thread);
    }

    private static async Task<Results<Ok<MessageListResponse>, ProblemHttpResult, ValidationProblem>> ListMessagesAsync(
        string threadId, IGrainFactory grains, CancellationToken cancellationToken, string? limit = null, string? after = null)
    {
        // Read as text: a limit that is not a number is named here, not by the binder (which names CLR types).
        var pageSize = DefaultPageSize;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out pageSize) || pageSize is < 1 or > MaxPageSize))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"limit must be an integer between 1 and {MaxPageSize}."] });
        }

        var grain = grains.GetGrain<IThreadGrain>(threadId);
        var page = await grain.GetMessagesAsync(new MessagePageRequest(after, pageSize), cancellationToken);
        if (page is null)
        {
            return ThreadNotFound(threadId);
        }

        // A wrong cursor is said so, not answered with an empty last page the client would take for the end.
        if (page.UnknownAfter)
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { ["after"] = [$"after must be the id of a message of this thread (a page's lastId); thread '{threadId}' has no message '{after}'."] },
                title: "Unknown paging cursor.");
        }

        return TypedResults.Ok(new MessageListResponse(page.Data, page.FirstId, page.LastId, page.HasMore));
    }

    /// <summary>
    /// Whether the thread has a message with this id: read through the pages, since the grain has no lookup of its own.
    /// Only asked when a cursor gave an empty page (it is the last message, or unknown).
    /// </summary>
    private static async Task<IResult> SendMessageAsync(
        string threadId, SendMessageRequest? request, [AsParameters] ThreadServicesParameters services, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (request is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["content"] = ["A JSON body with 'content' is required."] });
        }

        ValidateContent(request.Content, "content", errors);
        if (request.Agent is { Length: 0 or > 128 })
        {
            errors["agent"] = ["agent must be 1-128 characters."];
        }

        if (request.MultitaskStrategy is not null && !MultitaskStrategies.IsKnown(request.MultitaskStrategy))
        {
            errors["multitaskStrategy"] = [$"multitaskStrategy must be one of {string.Join(", ", MultitaskStrategies.All)}."];
        }

        if (request.ExpectedLastSequence is < 0)
        {
            errors["expectedLastSequence"] = ["expectedLastSequence must be an event sequence number (0 or more)."];
        }

        if (request.ExpectedLastMessageId is { Length: 0 or > 128 })
        {
            errors["expectedLastMessageId"] = ["expectedLastMessageId must be a message id."];
        }

        if (request.Stream == true && request.Wait == false)
        {
            errors["wait"] = ["wait=false answers at once without the run's events; it cannot be combined with stream=true."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var result = await services.Grains.GetGrain<IThreadGrain>(threadId).SendMessageAsync(
            new SendMessage(request.Content!)
            {
                Agent = request.Agent,
                MultitaskStrategy = request.MultitaskStrategy,
                ExpectedLastSequence = request.ExpectedLastSequence,
                ExpectedLastMessageId = request.ExpectedLastMessageId,
                Webhook = request.Webhook,
            },
            cancellationToken);
        switch (result)
        {
            case SendMessageResult.ThreadNotFound:
                return ThreadNotFound(threadId);
            case SendMessageResult.AgentNotFound notFound:
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["agent"] = [$"No agent is named '{notFound.Agent}'."] });
            case SendMessageResult.Rejected rejected:
                return TypedResults.Problem(
                    rejected.Reason ?? $"Run '{rejected.ActiveRunId}' is still active on this thread; wait for it to end, cancel it, or send with another multitaskStrategy.",
                    statusCode: StatusCodes.Status409Conflict,
                    title: rejected.Reason is null ? "A run is active" : "The thread's queue is full",
                    extensions: new Dictionary<string, object?> { ["activeRunId"] = rejected.ActiveRunId });
            case SendMessageResult.Invalid invalid:
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [invalid.Field] = [invalid.Message] });
            case SendMessageResult.LimitExceeded exceeded:
                return ThreadLimitProblem(exceeded.Limit);
            case SendMessageResult.Conflict conflict:
                return TypedResults.Problem(
                    $"The thread has moved on: {conflict.Field} does not match (its last event is {conflict.LastSequence}, its last message {conflict.LastMessageId ?? "none"}).",
                    statusCode: StatusCodes.Status409Conflict,
                    title: "The thread has moved on",
                    extensions: new Dictionary<string, object?>
                    {
                        ["field"] = conflict.Field,
                        ["lastSequence"] = conflict.LastSequence,
                        ["lastMessageId"] = conflict.LastMessageId,
                    });
        }

        var accepted = (SendMessageResult.Accepted)result;
        if (request.Wait == false)
        {
            return TypedResults.Accepted(
                $"/threads/{threadId}/runs/{accepted.RunId}",
                new SendAcceptedResponse(accepted.RunId, threadId, accepted.Status, accepted.UserMessageId, accepted.Steered));
        }

        var runEvents = services.Events.SubscribeAsync(threadId, accepted.StartSequence - 1, CancellationToken.None);
        if (request.Stream == true)
        {
            // The response ends with the run; the run does not end with the response. A queued run's stream waits
            // for its turn; a steer's is the rest of the run it joined.
            var items = runEvents.UntilRunEndsAsync(accepted.RunId, CancellationToken.None).ToSseItemsAsync(CancellationToken.None);
            return new ServerSentEventsStream(items, services.Streaming.Value.HeartbeatInterval);
        }

        return TypedResults.Ok(await RunResults.CollectAsync(threadId, accepted.RunId, runEvents, cancellationToken));
    }

    private static async Task<IResult> StreamEventsAsync(
        string threadId, HttpRequest httpRequest, [AsParameters] ThreadServicesParameters services, CancellationToken cancellationToken,
        string? after = null, string? format = null)
    {
        if (!WatchFormats.IsKnown(format))
        {
            return FormatUnknown();
        }

        // Last-Event-ID wins over ?after=: an EventSource keeps its URL and sends the header when it reconnects.
        var cursor = EventCursor.From(httpRequest, after);
        long afterSequence = 0;
        if (cursor is { } given && !EventCursor.TryParse(given.Raw, out afterSequence))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [given.Field] = [$"{given.Field} must be a non-negative event sequence number."] });
        }

        var grain = services.Grains.GetGrain<IThreadGrain>(threadId);
        var thread = await grain.GetAsync(cancellationToken);
        if (thread is null)
        {
            return ThreadNotFound(threadId);
        }

        if (cursor is { } resumed && EventCursor.BeyondEnd(thread, afterSequence) is { } lastSequence)
        {
            return CursorBeyondEnd(resumed.Field, afterSequence, lastSequence);
        }

        if (httpRequest.HttpContext.RequestServices.GetRequiredService<Limits.SubscriberLimits>().TryEnter(httpRequest.HttpContext, threadId) is { } refused)
        {
            return refused;
        }

        var events = StopOnShutdown(services.Events.SubscribeAsync(threadId, afterSequence, cancellationToken), services.Lifetime);
        return new ServerSentEventsStream(InFormat(format, threadId, events, cancellationToken), services.Streaming.Value.HeartbeatInterval);
    }

    /// <summary>The SSE items of a thread's events in the watch format asked for (native by default).</summary>
    private static IAsyncEnumerable<System.Net.ServerSentEvents.SseItem<string>> InFormat(
        string? format, string threadId, IAsyncEnumerable<ThreadEvent> events, CancellationToken cancellationToken) =>
        format is null or WatchFormats.Native
            ? events.ToSseItemsAsync(cancellationToken)
            : WatchFormats.ProjectAsync(format, threadId, events, cancellationToken);

    private static ValidationProblem FormatUnknown() =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]>
        {
            [WatchFormats.QueryName] = [$"format must be one of {string.Join(", ", WatchFormats.All)}."],
        });

    private static async Task<IResult> ListRunsAsync(
        string threadId, IGrainFactory grains, CancellationToken cancellationToken, int? limit = null, int? offset = null)
    {
        if (limit is < 1 or > 100)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 100."] });
        }

        if (offset is < 0)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["offset"] = ["offset must be 0 or more."] });
        }

        var page = await grains.GetGrain<IThreadGrain>(threadId).ListRunsAsync(offset ?? 0, limit ?? 20, cancellationToken);
        return page is null ? ThreadNotFound(threadId) : TypedResults.Ok(new RunListResponse(page.Data, page.HasMore));
    }

    private static async Task<IResult> StreamRunEventsAsync(
        string threadId, string runId, HttpRequest httpRequest, [AsParameters] ThreadServicesParameters services, CancellationToken cancellationToken,
        string? format = null)
    {
        if (!WatchFormats.IsKnown(format))
        {
            return FormatUnknown();
        }

        long? resumeAfter = null;
        if (EventCursor.From(httpRequest, after: null) is { } cursor)
        {
            if (!EventCursor.TryParse(cursor.Raw, out var parsed))
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [cursor.Field] = [$"{cursor.Field} must be a non-negative event sequence number."] });
            }

            resumeAfter = parsed;
        }

        var grain = services.Grains.GetGrain<IThreadGrain>(threadId);
        var run = await grain.GetRunAsync(runId, cancellationToken);
        if (run is null)
        {
            return await grain.GetAsync(cancellationToken) is null ? ThreadNotFound(threadId) : RunNotFound(threadId, runId);
        }

        // A queued run's events are yet to come: from the thread's present on. Otherwise from the run's start.
        var after = resumeAfter
            ?? (run.Status == RunStatuses.Queued ? (await grain.GetAsync(cancellationToken))?.LastSequence ?? 0 : run.StartSequence - 1);

        if (httpRequest.HttpContext.RequestServices.GetRequiredService<Limits.SubscriberLimits>().TryEnter(httpRequest.HttpContext, threadId) is { } refused)
        {
            return refused;
        }

        var events = StopOnShutdown(services.Events.SubscribeAsync(threadId, after, cancellationToken), services.Lifetime)
            .UntilRunEndsAsync(runId, cancellationToken);
        return new ServerSentEventsStream(InFormat(format, threadId, events, cancellationToken), services.Streaming.Value.HeartbeatInterval);
    }

    /// <summary>
    /// 400: the cursor is past the thread's last event. Accepting it would skip every new event until the numbering
    /// passed it; the client is told where the stream really ends instead.
    /// </summary>
    private static ValidationProblem CursorBeyondEnd(string field, long cursor, long lastSequence) =>
        TypedResults.ValidationProblem(
            new Dictionary<string, string[]>
            {
                [field] = [$"{field} {cursor} is after the thread's last event, {lastSequence}: resume after at most {lastSequence} (0 replays the whole stream)."],
            },
            detail: $"{field} {cursor} is after the thread's last event, {lastSequence}.",
            title: "The resume cursor is beyond the end of the thread's event stream.",
            extensions: new Dictionary<string, object?> { ["lastSequence"] = lastSequence });

    private static async Task<IResult> SubmitToolOutputsAsync(
        string threadId, string runId, SubmitToolOutputsRequest? request, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (request?.ToolOutputs is not { Count: > 0 } outputs)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["toolOutputs"] = ["toolOutputs must list at least one {toolCallId, output}."] });
        }

        var errors = new Dictionary<string, string[]>();
        for (var i = 0; i < outputs.Count; i++)
        {
            if (string.IsNullOrEmpty(outputs[i]?.ToolCallId))
            {
                errors[$"toolOutputs[{i}].toolCallId"] = ["toolCallId must name a tool call of the run."];
            }

            if (outputs[i]?.Output is null)
            {
                errors[$"toolOutputs[{i}].output"] = ["output must be a string."];
            }
            else if (outputs[i]!.Output!.Length > 1_000_000)
            {
                errors[$"toolOutputs[{i}].output"] = ["output must be at most 1,000,000 characters."];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var result = await grains.GetGrain<IThreadGrain>(threadId).SubmitToolOutputsAsync(
            runId, [.. outputs.Select(o => new ToolOutput(o!.ToolCallId!, o.Output!))], cancellationToken);
        return result switch
        {
            SubmitToolOutputsResult.Accepted accepted => TypedResults.Ok(accepted.Run),
            SubmitToolOutputsResult.NotWaiting notWaiting => TypedResults.Problem(
                notWaiting.Reason,
                statusCode: StatusCodes.Status409Conflict,
                title: "The run does not wait for these outputs",
                extensions: new Dictionary<string, object?> { ["toolCallIds"] = notWaiting.ToolCallIds }),
            _ => RunNotFound(threadId, runId),
        };
    }

    private static async Task<Results<Ok<RunRecord>, ProblemHttpResult>> GetRunAsync(
        string threadId, string runId, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var run = await grains.GetGrain<IThreadGrain>(threadId).GetRunAsync(runId, cancellationToken);
        return run is null ? RunNotFound(threadId, runId) : TypedResults.Ok(run);
    }

    private static async Task<Results<Accepted<RunRecord>, Ok<RunRecord>, ProblemHttpResult>> CancelRunAsync(
        string threadId, string runId, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var result = await grains.GetGrain<IThreadGrain>(threadId).CancelRunAsync(runId, cancellationToken);
        return result switch
        {
            CancelRunResult.Cancelling cancelling => TypedResults.Accepted($"/threads/{threadId}/runs/{runId}", cancelling.Run),
            CancelRunResult.AlreadyEnded ended => TypedResults.Ok(ended.Run),
            CancelRunResult.Dequeued dequeued => TypedResults.Ok(dequeued.Run),
            _ => RunNotFound(threadId, runId),
        };
    }

    private static async IAsyncEnumerable<ThreadEvent> StopOnShutdown(IAsyncEnumerable<ThreadEvent> events, IHostApplicationLifetime lifetime)
    {
        // Open subscriptions end when the server stops, so shutdown is not held up by idle streams.
        await using var enumerator = events.GetAsyncEnumerator(lifetime.ApplicationStopping);
        while (true)
        {
            bool moved;
            try
            {
                moved = await enumerator.MoveNextAsync();
            }
            catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                yield break;
            }

            if (!moved)
            {
                yield break;
            }

            yield return enumerator.Current;
        }
    }

    private static void ValidateContent(string? content, string field, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            errors[field] = [$"{field} is required and must not be empty."];
        }
        else if (MessageText.Problem(content) is { } problem)
        {
            errors[field] = [$"{field} {problem}"];
        }
    }

    private static void ValidateMetadata(Dictionary<string, string>? metadata, Dictionary<string, string[]> errors)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.Count > MaxMetadataPairs)
        {
            errors["metadata"] = [$"metadata holds at most {MaxMetadataPairs} pairs."];
        }

        foreach (var (key, value) in metadata)
        {
            if (key.Length is 0 or > 64 || value is null || value.Length > 512)
            {
                errors[$"metadata.{key}"] = ["metadata keys must be 1-64 characters and values at most 512 characters."];
            }
            else if (key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                errors[$"metadata.{key.Replace("\0", "\\u0000", StringComparison.Ordinal)}"] = [@"metadata keys and values must not contain the NUL character (\u0000)."];
            }
        }
    }

    private static ProblemHttpResult ThreadNotFound(string threadId) =>
        TypedResults.Problem($"No thread has id '{threadId}'.", statusCode: StatusCodes.Status404NotFound, title: "Thread not found");

    private static ProblemHttpResult RunNotFound(string threadId, string runId) =>
        TypedResults.Problem($"Thread '{threadId}' has no run '{runId}'.", statusCode: StatusCodes.Status404NotFound, title: "Run not found");

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex ThreadIdPattern();

    /// <summary>409: a send would take the thread over a storage limit (<c>Limits:MaxMessagesPerThread</c>, <c>Limits:MaxBytesPerThread</c>).</summary>
    public static IResult ThreadLimitProblem(ThreadLimit limit) => TypedResults.Problem(
        limit.Detail,
        statusCode: StatusCodes.Status409Conflict,
        title: "The thread is full",
        extensions: new Dictionary<string, object?> { ["limit"] = limit.Setting, ["maximum"] = limit.Maximum, ["current"] = limit.Current });
}

/// <summary>Dependencies of the streaming handlers, bundled.</summary>
public readonly record struct ThreadServicesParameters(
    IGrainFactory Grains, IThreadEventSource Events, IOptions<StreamingOptions> Streaming, IHostApplicationLifetime Lifetime);
