using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.StreamingChat;

/// <summary>Seed 003's <c>/ws</c> over a real socket, the way its README's WebSocket client uses it.</summary>
public sealed class StreamingChatWebSocketTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task WebSocket_chat_streams_a_tool_call_and_the_reply()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"15 + 27\"}")),
            ScriptedResponse.Text("It is ", "42."));
        await using var app = GatewayApp.WithModel(model);
        using var socket = await app.ConnectWebSocketAsync(Guard);

        await socket.SendChatAsync("what's 15 + 27?", Guard);
        var messages = await socket.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);

        Assert.Equal(["tool_call", "tool_call", "chat_chunk", "chat_chunk", "chat_complete"], messages.Select(m => m.WsType()));
        var start = messages[0].GetProperty("data");
        Assert.Equal("start", start.Str("status"));
        Assert.Equal("calculate", start.Str("name"));
        var complete = messages[1].GetProperty("data");
        Assert.Equal("complete", complete.Str("status"));
        Assert.Equal("call_1", complete.Str("id"));
        Assert.Equal("42", complete.Str("result"));
        Assert.Equal(["It is ", "42."], messages.Where(m => m.WsType() == "chat_chunk").Select(m => m.GetProperty("data").Str("content")));
        Assert.Equal("It is 42.", messages[^1].GetProperty("data").Str("final_response"));
    }

    [Fact]
    public async Task Bad_messages_get_an_error_and_the_socket_keeps_working()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Still here."));
        await using var app = GatewayApp.WithModel(model);
        using var socket = await app.ConnectWebSocketAsync(Guard);

        await socket.SendTextAsync("this is not json", Guard);
        var notJson = await socket.ReceiveJsonAsync(Guard);
        await socket.SendTextAsync("{\"type\":\"ping\"}", Guard);
        var unknownType = await socket.ReceiveJsonAsync(Guard);
        await socket.SendTextAsync("{\"type\":\"chat\",\"data\":{\"reset_history\":false}}", Guard);
        var noMessage = await socket.ReceiveJsonAsync(Guard);
        await socket.SendChatAsync("are you there?", Guard);
        var reply = await socket.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);

        Assert.Equal("error", notJson.WsType());
        Assert.Equal("invalid_json", notJson.GetProperty("data").Str("code"));
        Assert.Equal("error", unknownType.WsType());
        Assert.Equal("unknown_message_type", unknownType.GetProperty("data").Str("code"));
        Assert.Contains("ping", unknownType.GetProperty("data").Str("error"));
        Assert.Equal("error", noMessage.WsType());
        Assert.Contains("data.message", noMessage.GetProperty("data").Str("error"));
        Assert.Equal("chat_complete", reply[^1].WsType());
        Assert.Equal("Still here.", reply[^1].GetProperty("data").Str("final_response"));
        Assert.Equal(WebSocketState.Open, socket.State);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", Guard);
        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task Messages_sent_back_to_back_run_one_after_another_in_one_conversation()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("one"), ScriptedResponse.Text("two"));
        await using var app = GatewayApp.WithModel(model);
        using var socket = await app.ConnectWebSocketAsync(Guard);

        await socket.SendChatAsync("first", Guard);
        await socket.SendChatAsync("second", Guard);
        var firstRun = await socket.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);
        var secondRun = await socket.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);

        Assert.Equal("one", firstRun[^1].GetProperty("data").Str("final_response"));
        Assert.Equal("two", secondRun[^1].GetProperty("data").Str("final_response"));
        var history = model.Requests[1].Messages.Select(m => m!["content"]?.GetValue<string>()).ToList();
        Assert.Contains("first", history);
        Assert.Contains("one", history);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_run_does_not_stop_the_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("a ", "b ", "c").WithDelay(TimeSpan.FromMilliseconds(100)));
        await using var app = GatewayApp.WithModel(model);
        var socket = await app.ConnectWebSocketAsync(Guard);

        await socket.SendChatAsync("spell it", Guard);
        var first = await socket.ReceiveJsonAsync(Guard);
        var threadId = first.GetProperty("data").Str("thread_id");
        socket.Abort();
        socket.Dispose();

        using var native = await SseEvents.OpenEventStreamAsync(app.Client, $"/threads/{threadId}/events?after=0", null, Guard);
        var events = await native.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("chat_chunk", first.WsType());
        Assert.Equal("run.completed", events[^1].Type);
        var messages = await app.Client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard);
        Assert.Equal("a b c", messages.GetProperty("data").EnumerateArray().Last().Str("content"));
    }

    [Fact]
    public async Task A_plain_http_request_to_the_websocket_endpoint_gets_400()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.GetAsync("/ws", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
