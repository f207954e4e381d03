using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Errors;

namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>
/// Seed 003's <c>/ws</c>: the client sends <c>{"type":"chat","data":{"message",…}}</c>; the server answers with
/// <c>chat_chunk</c>, <c>tool_call</c>, <c>chat_complete</c> and <c>error</c> messages, each <c>{"type","data"}</c>.
/// Messages on one socket run one after another (a message sent during a run waits for it); a message that cannot be
/// read gets an <c>error</c> and the socket stays open. A client that goes away stops only the relaying: the run
/// belongs to its thread and finishes.
/// </summary>
public static class StreamingChatWebSocket
{
    /// <summary>The largest client message accepted; a larger one closes the socket with 1009 (message too big).</summary>
    public const int MaxMessageBytes = 1 << 20;

    /// <summary>How many chat messages may wait behind the active one.</summary>
    public const int MaxQueuedMessages = 16;

    public static IEndpointRouteBuilder MapStreamingChatWebSocket(this IEndpointRouteBuilder app, StreamingChatConversations conversations)
    {
        app.Map("/ws", (HttpContext context, [AsParameters] StreamingChatServices services, IHostApplicationLifetime lifetime) =>
                ConnectAsync(context, conversations, services, lifetime))
            .WithName("StreamingChatWebSocket")
            .WithSummary("WebSocket chat: send {\"type\":\"chat\",\"data\":{\"message\",\"reset_history\",\"parallel_tools\"}}; receive chat_chunk, tool_call, chat_complete and error messages.")
            .WithTags("Streaming chat (seed 003)");
        return app;
    }

    private static async Task<IResult> ConnectAsync(
        HttpContext context, StreamingChatConversations conversations, StreamingChatServices services, IHostApplicationLifetime lifetime)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return TypedResults.Problem("/ws is a WebSocket endpoint: connect with ws:// (an HTTP/1.1 Upgrade request).",
                statusCode: StatusCodes.Status400BadRequest, title: "WebSocket required");
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        // The caller is who opened the socket: every message on it runs as them.
        await new Session(socket, Caller.Of(context), conversations, services) { Metrics = context.RequestServices.GetService<Telemetry.GatewayMetrics>() }.RunAsync(stop.Token);
        return TypedResults.Empty;
    }

    private sealed class Session(WebSocket socket, Caller caller, StreamingChatConversations conversations, StreamingChatServices services)
    {
        private readonly SemaphoreSlim _sending = new(1, 1);
        private readonly Channel<ChatRequest> _queue = Channel.CreateBounded<ChatRequest>(
            new BoundedChannelOptions(MaxQueuedMessages) { SingleReader = true, SingleWriter = true });

        /// <summary>Counts each message sent as an event relayed in seed 003's format.</summary>
        public Telemetry.GatewayMetrics? Metrics { get; init; }

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var runs = RunQueuedAsync(stop.Token);
            try
            {
                await ReceiveAsync(stop.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                // The client went away or the server is stopping.
            }
            finally
            {
                _queue.Writer.TryComplete();
                // Stops relaying; the runs themselves belong to their threads and go on.
                await stop.CancelAsync();
                try
                {
                    await runs;
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                    // Relaying ended with the socket.
                }
            }

            if (socket.State == WebSocketState.CloseReceived)
            {
                try
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                    // The client did not wait for the closing handshake.
                }
            }
        }

        private async Task ReceiveAsync(CancellationToken cancellationToken)
        {
            var buffer = new byte[16 * 1024];
            using var message = new MemoryStream();
            while (true)
            {
                message.SetLength(0);
                ValueWebSocketReceiveResult received;
                do
                {
                    received = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    if (message.Length + received.Count > MaxMessageBytes)
                    {
                        await SendErrorAsync("message_too_large", $"A message may be at most {MaxMessageBytes} bytes.", cancellationToken);
                        await socket.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, "message too large", cancellationToken);
                        return;
                    }

                    message.Write(buffer, 0, received.Count);
                }
                while (!received.EndOfMessage);

                if (received.MessageType == WebSocketMessageType.Binary)
                {
                    await SendErrorAsync("invalid_message", "Binary messages are not supported; send JSON text.", cancellationToken);
                    continue;
                }

                await HandleAsync(message.GetBuffer().AsMemory(0, (int)message.Length), cancellationToken);
            }
        }

        private async Task HandleAsync(ReadOnlyMemory<byte> text, CancellationToken cancellationToken)
        {
            ChatRequest? request;
            var parsed = false;
            try
            {
                using var document = JsonDocument.Parse(text);
                parsed = true;
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object
                    || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                {
                    await SendErrorAsync("invalid_message", "type: a message must be a JSON object with a string 'type' (\"chat\").", cancellationToken);
                    return;
                }

                if (!type.ValueEquals("chat"))
                {
                    var name = JsonInputErrors.TextOf(type, out var problem);
                    await SendErrorAsync(
                        problem is null ? "unknown_message_type" : "invalid_message",
                        problem is null ? $"type: unknown message type '{name}'; the only type is 'chat'." : $"type: {problem}.",
                        cancellationToken);
                    return;
                }

                if (!root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object)
                {
                    await SendErrorAsync("invalid_message", "data: a chat message needs a 'data' object with 'message'.", cancellationToken);
                    return;
                }

                request = data.Deserialize<ChatRequest>(StreamingChatJson.Options);
            }
            catch (JsonException ex)
            {
                // Parse errors are the message's; a value of the wrong type is data's (read as a ChatRequest).
                var error = parsed
                    ? JsonInputErrors.Describe(ex, typeof(ChatRequest), StreamingChatJson.Options, fieldPrefix: "data")
                    : JsonInputErrors.Describe(ex, null, StreamingChatJson.Options);
                var field = error.Field ?? "message";
                // "data.message: must be a string.", as the other errors of this socket name their field first.
                await SendErrorAsync("invalid_json", $"{field}: {(error.Field is null ? $"the message {error.Problem}" : error.Problem)}.", cancellationToken);
                return;
            }

            var errors = StreamingChatConversations.Validate(request);
            if (errors.Count > 0)
            {
                await SendErrorAsync("invalid_request", string.Join(" ", errors.Select(e => $"data.{e.Key}: {string.Join(" ", e.Value)}")), cancellationToken);
                return;
            }

            if (!_queue.Writer.TryWrite(request!))
            {
                await SendErrorAsync("queue_full", $"At most {MaxQueuedMessages} messages may wait behind the active run.", cancellationToken);
            }
        }

        private async Task RunQueuedAsync(CancellationToken cancellationToken)
        {
            await foreach (var request in _queue.Reader.ReadAllAsync(cancellationToken))
            {
                // Starting is not cut short by a disconnect: a run the client asked for either starts whole or not at all.
                var start = await conversations.StartAsync(request, caller, services.Runner, services.Agents, CancellationToken.None);
                switch (start)
                {
                    case ChatStart.Invalid invalid:
                        await SendErrorAsync("invalid_request", string.Join(" ", invalid.Errors.Select(e => $"data.{e.Key}: {string.Join(" ", e.Value)}")), cancellationToken);
                        break;
                    case ChatStart.NotFound notFound:
                        await SendErrorAsync("thread_not_found", $"data.{notFound.Detail}", cancellationToken);
                        break;
                    case ChatStart.Busy busy:
                        await SendAsync("error", StreamingChatEvents.Failure(busy.Agent, busy.ThreadId, busy.ActiveRunId, "run_active", busy.Detail), cancellationToken);
                        break;
                    case ChatStart.Started started:
                        await foreach (var chatEvent in started.Events.WithCancellation(cancellationToken))
                        {
                            await SendEventAsync(chatEvent, cancellationToken);
                        }

                        break;
                }
            }
        }

        private Task SendEventAsync(ChatStreamEvent chatEvent, CancellationToken cancellationToken) => chatEvent.EventType switch
        {
            ChatEventTypes.ToolCallStart or ChatEventTypes.ToolCallComplete or ChatEventTypes.ToolCallError =>
                SendAsync("tool_call", chatEvent.ToolCall!, cancellationToken),
            _ => SendAsync(chatEvent.EventType, chatEvent, cancellationToken),
        };

        private Task SendErrorAsync(string code, string message, CancellationToken cancellationToken) =>
            SendAsync("error", StreamingChatEvents.Failure(null, null, null, code, message), cancellationToken);

        private async Task SendAsync<T>(string type, T data, CancellationToken cancellationToken)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(new WebSocketEnvelope<T>(type, data), StreamingChatJson.Options);
            await _sending.WaitAsync(cancellationToken);
            try
            {
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                Metrics?.Relayed(Streaming.WatchFormats.Chat);
            }
            finally
            {
                _sending.Release();
            }
        }
    }
}
