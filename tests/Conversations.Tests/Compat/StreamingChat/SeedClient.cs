using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.StreamingChat;

/// <summary>Seed 003's clients, as its README writes them.</summary>
public static class SeedClient
{
    /// <summary>
    /// The README's JavaScript: split the body on '\n', take the lines that start with <c>data: </c> and
    /// <c>JSON.parse(line.slice(6))</c> each, with no try/catch (a data line that is not JSON fails the test).
    /// </summary>
    public static async Task<List<JsonElement>> ReadDataLinesAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var events = new List<JsonElement>();
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var document = JsonDocument.Parse(line[6..]);
                events.Add(document.RootElement.Clone());
            }
        }

        return events;
    }

    /// <summary>The README's Python: <c>async for line in response.content</c>, strip, <c>data: </c>, <c>json.loads</c>.</summary>
    public static async Task<List<JsonElement>> ReadLinesLiveAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        var events = new List<JsonElement>();
        while (await reader.ReadLineAsync(cancellationToken) is { } raw)
        {
            var line = raw.Trim();
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var document = JsonDocument.Parse(line[6..]);
                events.Add(document.RootElement.Clone());
            }
        }

        return events;
    }

    /// <summary>POST /chat/stream and read every event the Python way.</summary>
    public static async Task<List<JsonElement>> StreamChatAsync(this HttpClient client, object body, CancellationToken cancellationToken)
    {
        using var response = await client.PostStreamAsync("/chat/stream", body, cancellationToken);
        response.EnsureSuccessStatusCode();
        return await ReadLinesLiveAsync(response, cancellationToken);
    }

    public static string EventType(this JsonElement e) => e.GetProperty("event_type").GetString()!;

    public static string? Str(this JsonElement e, string property) =>
        e.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>The README's <c>new WebSocket('ws://localhost:8000/ws')</c>, against this gateway.</summary>
    public static async Task<ClientWebSocket> ConnectWebSocketAsync(this GatewayApp app, CancellationToken cancellationToken)
    {
        var uri = new UriBuilder(app.Client.BaseAddress!) { Scheme = "ws", Path = "/ws" }.Uri;
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(uri, cancellationToken);
        return socket;
    }

    public static Task SendTextAsync(this ClientWebSocket socket, string text, CancellationToken cancellationToken) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);

    /// <summary>The README's <c>sendMessage</c>.</summary>
    public static Task SendChatAsync(this ClientWebSocket socket, string message, CancellationToken cancellationToken, bool resetHistory = false, bool parallelTools = true) =>
        socket.SendTextAsync(JsonSerializer.Serialize(new
        {
            type = "chat",
            data = new { message, reset_history = resetHistory, parallel_tools = parallelTools },
        }), cancellationToken);

    /// <summary>One message, <c>JSON.parse(event.data)</c>.</summary>
    public static async Task<JsonElement> ReceiveJsonAsync(this ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        using var message = new MemoryStream();
        ValueWebSocketReceiveResult received;
        do
        {
            received = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException("The server closed the WebSocket.");
            }

            message.Write(buffer, 0, received.Count);
        }
        while (!received.EndOfMessage);

        using var document = JsonDocument.Parse(message.ToArray());
        return document.RootElement.Clone();
    }

    /// <summary>Receives messages up to and including the first that matches <paramref name="last"/>.</summary>
    public static async Task<List<JsonElement>> ReceiveUntilAsync(this ClientWebSocket socket, Func<JsonElement, bool> last, CancellationToken cancellationToken)
    {
        var messages = new List<JsonElement>();
        while (true)
        {
            var message = await socket.ReceiveJsonAsync(cancellationToken);
            messages.Add(message);
            if (last(message))
            {
                return messages;
            }
        }
    }

    public static string WsType(this JsonElement e) => e.GetProperty("type").GetString()!;

    public static bool IsWsRunEnd(JsonElement e) => e.WsType() is "chat_complete" or "error";
}
