using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text.Json;
using Azure.Identity;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Tools;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenAI.Chat;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// A chat model on an OpenAI-compatible chat completions endpoint (Azure OpenAI included), streamed through the
/// official OpenAI SDK; a model marked non-streaming is called whole (see <c>OpenAiChatModel.Complete.cs</c>).
/// </summary>
/// <remarks>
/// Thread-safe: one instance serves every run that uses the model. Failures surface as <see cref="ModelException"/>
/// whose message never carries the API key; cancellation by the caller's token surfaces as
/// <see cref="OperationCanceledException"/>. The SDK's exceptions are unwrapped first (its retry policy gathers the
/// attempts' failures in an <see cref="AggregateException"/>; a transport failure is a <see cref="ClientResultException"/>
/// without a status around an <see cref="HttpRequestException"/> around a <see cref="SocketException"/>): an endpoint that
/// cannot be reached, or answers 408, 429, 502, 503 or 504, is <c>model_unavailable</c>; any other answer or a stream
/// that breaks is <c>model_error</c>. Each failure is logged with its cause (host, HTTP status, error), never the key.
/// </remarks>
public sealed partial class OpenAiChatModel : IChatModel
{
    private const int MaxErrorDetailLength = 300;

    private readonly ChatClient _client;
    private readonly string? _apiKey;
    private readonly string _host;
    private readonly ILogger _logger;

    public OpenAiChatModel(OpenAiModelOptions options, ILogger<OpenAiChatModel>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Model, nameof(options));

        _client = ChatClientFactory.Create(options);
        _apiKey = string.IsNullOrEmpty(options.ApiKey) ? null : options.ApiKey;
        _host = options.BaseUrl?.Authority ?? "api.openai.com";
        _logger = logger ?? (ILogger)NullLogger.Instance;
        Name = options.Model;
        SupportsStreaming = options.SupportsStreaming;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool SupportsStreaming { get; }

    /// <inheritdoc />
    public async IAsyncEnumerable<ModelUpdate> StreamAsync(
        ModelRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!SupportsStreaming)
        {
            await foreach (var whole in CompleteAsync(request, cancellationToken).ConfigureAwait(false))
            {
                yield return whole;
            }

            yield break;
        }

        var messages = ToChatMessages(request);
        var options = ToCompletionOptions(request);

        ChatFinishReason? finishReason = null;
        Usage? usage = null;
        var responseStarted = false;

        // The SDK sends the request on the first MoveNextAsync, so both the connection and the stream fail there.
        // A yield may not sit inside a try with a catch, hence the manual enumerator.
        var updates = _client.CompleteChatStreamingAsync(messages, options, cancellationToken);
        var enumerator = updates.GetAsyncEnumerator(cancellationToken);
        await using (enumerator.ConfigureAwait(false))
        {
            while (true)
            {
                StreamingChatCompletionUpdate update;
                try
                {
                    if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }

                    update = enumerator.Current;
                }
                catch (Exception exception) when (exception is not ModelException)
                {
                    throw Translate(exception, responseStarted, request, cancellationToken);
                }

                responseStarted = true;

                foreach (var part in update.ContentUpdate)
                {
                    if (!string.IsNullOrEmpty(part.Text))
                    {
                        yield return new ModelTextDelta(part.Text);
                    }
                }

                foreach (var toolCall in update.ToolCallUpdates)
                {
                    var arguments = toolCall.FunctionArgumentsUpdate is { IsEmpty: false } data ? data.ToString() : null;
                    var id = string.IsNullOrEmpty(toolCall.ToolCallId) ? null : toolCall.ToolCallId;
                    var name = string.IsNullOrEmpty(toolCall.FunctionName) ? null : toolCall.FunctionName;
                    if (id is not null || name is not null || arguments is not null)
                    {
                        yield return new ModelToolCallDelta(toolCall.Index, id, name, arguments);
                    }
                }

                if (update.FinishReason is { } reason)
                {
                    finishReason = reason;
                }

                if (update.Usage is { } tokens)
                {
                    usage = new Usage(tokens.InputTokenCount, tokens.OutputTokenCount, tokens.TotalTokenCount);
                }
            }
        }

        if (finishReason is null)
        {
            throw Logged(new ModelException(RunErrorCodes.ModelError, "The model stream ended without a finish reason."), request, null, null, "the stream ended without a finish reason");
        }

        yield return new ModelFinished(ToFinishReason(finishReason.Value), usage);
    }

    private static List<ChatMessage> ToChatMessages(ModelRequest request)
    {
        var messages = new List<ChatMessage>(request.Messages.Count + 1);
        if (!string.IsNullOrEmpty(request.Instructions))
        {
            messages.Add(new SystemChatMessage(request.Instructions));
        }

        foreach (var message in request.Messages)
        {
            messages.Add(message.Role switch
            {
                MessageRoles.System => new SystemChatMessage(message.Content),
                MessageRoles.User => new UserChatMessage(message.Content),
                MessageRoles.Assistant => ToAssistantMessage(message),
                MessageRoles.Tool => new ToolChatMessage(
                    message.ToolCallId ?? throw new ArgumentException($"Tool message {message.Id} answers no tool call.", nameof(request)),
                    message.Content),
                _ => throw new ArgumentException($"Message {message.Id} has the unknown role '{message.Role}'.", nameof(request)),
            });
        }

        return messages;
    }

    private static AssistantChatMessage ToAssistantMessage(ThreadMessage message)
    {
        if (message.ToolCalls is not { Count: > 0 } toolCalls)
        {
            return new AssistantChatMessage(message.Content);
        }

        var assistant = new AssistantChatMessage(toolCalls.Select(call => ChatToolCall.CreateFunctionToolCall(
            call.Id,
            call.Name,
            BinaryData.FromString(string.IsNullOrWhiteSpace(call.Arguments) ? "{}" : call.Arguments))));
        if (!string.IsNullOrEmpty(message.Content))
        {
            assistant.Content.Add(ChatMessageContentPart.CreateTextPart(message.Content));
        }

        return assistant;
    }

    private static ChatCompletionOptions ToCompletionOptions(ModelRequest request)
    {
        var options = new ChatCompletionOptions
        {
            Temperature = request.Temperature is { } temperature ? (float)temperature : null,
            MaxOutputTokenCount = request.MaxTokens,
        };

        foreach (var tool in request.Tools)
        {
            options.Tools.Add(ToChatTool(tool));
        }

        return options;
    }

    private static ChatTool ToChatTool(ToolDefinition tool)
    {
        var schema = tool.ParametersSchema.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null
            ? null
            : BinaryData.FromString(tool.ParametersSchema.GetRawText());
        return ChatTool.CreateFunctionTool(tool.Name, tool.Description, schema);
    }

    private static string ToFinishReason(ChatFinishReason reason) => reason switch
    {
        ChatFinishReason.Stop => "stop",
        ChatFinishReason.Length => "length",
        ChatFinishReason.ToolCalls or ChatFinishReason.FunctionCall => "tool_calls",
        ChatFinishReason.ContentFilter => "content_filter",
        _ => "stop",
    };

    private Exception Translate(Exception exception, bool responseStarted, ModelRequest request, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            // The caller cancelled: whatever the SDK or the socket threw on the way out, the caller sees a cancellation.
            return exception as OperationCanceledException ?? new OperationCanceledException(null, exception, cancellationToken);
        }

        // The SDK's retry policy throws an AggregateException of every attempt's failure: the last attempt says why.
        var attempts = Attempts(exception);
        var chain = Chain(attempts[^1]);
        var cause = Describe(attempts, chain);

        if (chain.OfType<ClientResultException>().FirstOrDefault(e => e.Status > 0) is { } failed)
        {
            var detail = ErrorDetail(failed.GetRawResponse());
            var code = IsUnavailable(failed.Status) ? RunErrorCodes.ModelUnavailable : RunErrorCodes.ModelError;
            return Logged(
                new ModelException(
                    code,
                    detail is null ? $"The model endpoint answered {failed.Status}." : $"The model endpoint answered {failed.Status}: {detail}",
                    exception),
                request,
                failed.Status,
                detail,
                cause);
        }

        if (chain.OfType<AuthenticationFailedException>().Any())
        {
            // Azure OpenAI without a key: no Entra ID token could be had (the details are in the inner exception).
            return Logged(
                new ModelException(
                    RunErrorCodes.ModelUnavailable,
                    "No Entra ID token for Azure OpenAI: set an API key, or give this process an Azure identity.",
                    exception),
                request,
                null,
                null,
                cause);
        }

        if (!responseStarted && chain.Any(e => e is ClientResultException or HttpRequestException or SocketException or IOException or AuthenticationException or OperationCanceledException))
        {
            // No response yet: connection refused, name not resolved, TLS failure, or the network timeout.
            return Logged(
                new ModelException(RunErrorCodes.ModelUnavailable, $"The model endpoint could not be reached: {UnreachableReason(chain)}.", exception),
                request,
                null,
                null,
                cause);
        }

        var reason = chain.FirstOrDefault(e => e is OperationCanceledException or IOException or HttpRequestException or SocketException or JsonException or ArgumentOutOfRangeException) switch
        {
            OperationCanceledException => "the endpoint stopped sending within the network timeout.",
            IOException or HttpRequestException or SocketException => "the connection was lost.",
            JsonException => "a chunk was not valid JSON.",
            // The SDK rejects enum values it does not know, e.g. a finish_reason other than OpenAI's own.
            ArgumentOutOfRangeException => "a chunk carried a value the OpenAI SDK does not know (such as an unknown finish_reason).",
            _ => "the stream could not be read.",
        };
        return Logged(new ModelException(RunErrorCodes.ModelError, $"The model stream broke off: {reason}", exception), request, null, null, cause);
    }

    /// <summary>Logs a failure with its cause (the host, the HTTP status, the endpoint's error), never the key.</summary>
    private ModelException Logged(ModelException failure, ModelRequest request, int? status, string? error, string cause)
    {
        Log.ModelCallFailed(
            _logger,
            request.ThreadId,
            request.RunId,
            Name,
            _host,
            failure.Code,
            status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none",
            error ?? "none",
            Mask(cause));
        return failure;
    }

    /// <summary>408, 429 and the gateway statuses mean the endpoint cannot serve now; any other status is an answer.</summary>
    private static bool IsUnavailable(int status) => status is 408 or 429 or 502 or 503 or 504;

    /// <summary>Each attempt's failure: the inner exceptions of the retry policy's aggregate, or the exception itself.</summary>
    private static List<Exception> Attempts(Exception exception) =>
        exception is AggregateException aggregate && aggregate.InnerExceptions.Count > 0
            ? [.. aggregate.Flatten().InnerExceptions]
            : [exception];

    /// <summary>The exception and its inner exceptions, outermost first (nested aggregates flattened).</summary>
    private static List<Exception> Chain(Exception exception)
    {
        var chain = new List<Exception>();
        for (Exception? e = exception; e is not null && chain.Count < 16; e = e.InnerException)
        {
            if (e is AggregateException { InnerExceptions.Count: > 0 } nested)
            {
                chain.Add(nested);
                e = nested.Flatten().InnerExceptions[^1];
            }

            chain.Add(e);
        }

        return chain;
    }

    private static string UnreachableReason(List<Exception> chain)
    {
        var socket = chain.OfType<SocketException>().FirstOrDefault();
        return socket?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "the connection was refused",
            SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "its host name could not be resolved",
            SocketError.TimedOut => "the connection timed out",
            SocketError.NetworkUnreachable or SocketError.HostUnreachable or SocketError.NetworkDown => "the network or host is unreachable",
            SocketError.ConnectionReset or SocketError.ConnectionAborted => "the connection was reset",
            _ when chain.Any(e => e is AuthenticationException) => "the TLS handshake failed",
            _ when chain.Any(e => e is OperationCanceledException) => "no response within the network timeout",
            _ => "the connection failed",
        };
    }

    /// <summary>The cause for the log: attempts, then each exception's type and message (a status for the SDK's own, whose message holds the response body).</summary>
    private static string Describe(List<Exception> attempts, List<Exception> chain)
    {
        var parts = chain.Select(e => e switch
        {
            ClientResultException result => result.Status > 0 ? $"ClientResultException (HTTP {result.Status})" : "ClientResultException (no response)",
            SocketException socket => $"SocketException ({socket.SocketErrorCode}): {socket.Message}",
            AggregateException aggregate => $"AggregateException ({aggregate.InnerExceptions.Count})",
            _ => $"{e.GetType().Name}: {e.Message}",
        });
        var described = string.Join(" <- ", parts);
        return attempts.Count > 1 ? $"{attempts.Count} attempts, the last: {described}" : described;
    }

    private string Mask(string text) => _apiKey is null ? text : text.Replace(_apiKey, "***", StringComparison.Ordinal);

    /// <summary>The <c>error.message</c> of an OpenAI-style error body, shortened and with the API key masked.</summary>
    private string? ErrorDetail(PipelineResponse? response)
    {
        string? detail;
        try
        {
            var body = response?.Content;
            if (body is null || body.IsEmpty)
            {
                return null;
            }

            using var document = JsonDocument.Parse(body);
            detail = document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error)
                    ? error.ValueKind switch
                    {
                        JsonValueKind.Object when error.TryGetProperty("message", out var message)
                            && message.ValueKind == JsonValueKind.String => message.GetString(),
                        JsonValueKind.String => error.GetString(),
                        _ => null,
                    }
                    : null;
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            // Not JSON, or the body was not buffered: the status alone has to do.
            return null;
        }

        if (string.IsNullOrWhiteSpace(detail))
        {
            return null;
        }

        detail = Mask(detail).Trim();
        return detail.Length <= MaxErrorDetailLength ? detail : string.Concat(detail.AsSpan(0, MaxErrorDetailLength), "…");
    }
}
