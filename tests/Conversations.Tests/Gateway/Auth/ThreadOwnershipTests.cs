using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Conversations.Tests.Compat.StreamingChat;

namespace Conversations.Tests.Gateway.Auth;

/// <summary>A thread belongs to its creator: anyone else is answered as if it did not exist, on every route and dialect.</summary>
public sealed class ThreadOwnershipTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    /// <summary>Every route that takes a thread id, in each dialect, as (name, method, path, body, header to add).</summary>
    private static IEnumerable<(string Name, HttpMethod Method, string Path, object? Body, (string, string)? Header)> ThreadRoutes(string threadId, string runId)
    {
        yield return ("GET thread", HttpMethod.Get, $"/threads/{threadId}", null, null);
        yield return ("GET messages", HttpMethod.Get, $"/threads/{threadId}/messages", null, null);
        yield return ("GET runs", HttpMethod.Get, $"/threads/{threadId}/runs", null, null);
        yield return ("GET run", HttpMethod.Get, $"/threads/{threadId}/runs/{runId}", null, null);
        foreach (var format in new[] { "native", "openai", "anthropic", "langbase", "completion", "chat" })
        {
            yield return ($"GET events ({format})", HttpMethod.Get, $"/threads/{threadId}/events?format={format}", null, null);
            yield return ($"GET run events ({format})", HttpMethod.Get, $"/threads/{threadId}/runs/{runId}/events?format={format}", null, null);
        }

        yield return ("GET Langbase messages", HttpMethod.Get, $"/v1/threads/{threadId}/messages", null, null);
        // Writes: none may reach the thread.
        yield return ("POST message", HttpMethod.Post, $"/threads/{threadId}/messages", new { content = "B was here" }, null);
        yield return ("POST message (stream)", HttpMethod.Post, $"/threads/{threadId}/messages", new { content = "B was here", stream = true }, null);
        yield return ("POST cancel", HttpMethod.Post, $"/threads/{threadId}/runs/{runId}/cancel", new { }, null);
        yield return ("POST tool outputs", HttpMethod.Post, $"/threads/{threadId}/runs/{runId}/tool-outputs", new { toolOutputs = new[] { new { toolCallId = "call_1", output = "B" } } }, null);
        yield return ("POST Langbase messages", HttpMethod.Post, $"/v1/threads/{threadId}/messages", new { messages = new[] { new { role = "user", content = "B was here" } } }, null);
        yield return ("POST Langbase pipe run", HttpMethod.Post, "/v1/pipes/run",
            new { threadId, messages = new[] { new { role = "user", content = "earlier" }, new { role = "user", content = "B was here" } } }, null);
        yield return ("POST OpenAI chat completion", HttpMethod.Post, "/v1/chat/completions",
            new { messages = new[] { new { role = "user", content = "B was here" } } }, ("X-Thread-Id", threadId));
        yield return ("POST AXMP completion", HttpMethod.Post, $"/conversations/{threadId}/completion", new { prompt = "B was here" }, null);
        yield return ("POST seed 001 completion", HttpMethod.Post, "/completion", new { message = "B was here", conversation_id = threadId }, null);
        yield return ("POST seed 003 chat", HttpMethod.Post, "/chat", new { message = "B was here", thread_id = threadId }, null);
        yield return ("POST seed 003 chat stream", HttpMethod.Post, "/chat/stream", new { message = "B was here", thread_id = threadId }, null);
    }

    [Fact]
    public async Task Another_users_thread_is_404_on_every_route_and_dialect_and_nothing_reaches_it()
    {
        await using var app = AuthSettings.App();
        var alice = app.ClientWith(AuthSettings.Token("alice"));
        var bob = app.ClientWith(AuthSettings.Token("bob"));
        var admin = app.ClientWith(AuthSettings.Token("root", roles: ["admin"]));
        var threadId = await alice.CreateThreadAsync(new { metadata = new Dictionary<string, string> { ["topic"] = "alice's secret" } }, Guard);
        using var sent = await alice.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "hello" }, Guard);
        var runId = (await sent.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
        var before = await alice.GetStringAsync($"/threads/{threadId}/messages", Guard);

        var bobs = new List<(string Name, HttpStatusCode Status, string Body)>();
        foreach (var route in ThreadRoutes(threadId, runId))
        {
            using var request = new HttpRequestMessage(route.Method, route.Path);
            if (route.Body is not null)
            {
                request.Content = JsonContent.Create(route.Body);
            }

            if (route.Header is var (name, value))
            {
                request.Headers.Add(name, value);
            }

            using var response = await bob.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Guard);
            bobs.Add((route.Name, response.StatusCode, await response.Content.ReadAsStringAsync(Guard)));
        }

        var after = await alice.GetStringAsync($"/threads/{threadId}/messages", Guard);
        var thread = await alice.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        // The owner and an admin read every view of it.
        var reads = ThreadRoutes(threadId, runId).Where(r => r.Method == HttpMethod.Get).ToList();
        var owners = new List<(string Name, HttpStatusCode Alice, HttpStatusCode Admin)>();
        foreach (var route in reads)
        {
            using var asAlice = await alice.SendAsync(new HttpRequestMessage(HttpMethod.Get, route.Path), HttpCompletionOption.ResponseHeadersRead, Guard);
            using var asAdmin = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Get, route.Path), HttpCompletionOption.ResponseHeadersRead, Guard);
            owners.Add((route.Name, asAlice.StatusCode, asAdmin.StatusCode));
        }

        Assert.Equal(28, bobs.Count);
        Assert.All(bobs, b =>
        {
            Assert.True(b.Status == HttpStatusCode.NotFound, $"{b.Name}: {(int)b.Status} {b.Body}");
            Assert.DoesNotContain("alice's secret", b.Body);
        });
        Assert.Equal(before, after);
        Assert.Equal(2, thread.GetProperty("messageCount").GetInt32());
        Assert.Equal("user:alice", thread.GetProperty("owner").GetString());
        Assert.All(owners, o => Assert.True(o.Alice == HttpStatusCode.OK && o.Admin == HttpStatusCode.OK, $"{o.Name}: alice {(int)o.Alice}, admin {(int)o.Admin}"));
    }

    [Fact]
    public async Task The_websocket_runs_as_who_opened_it_and_cannot_write_into_another_users_thread()
    {
        await using var app = AuthSettings.App();
        var alice = app.ClientWith(AuthSettings.Token("alice"));
        var threadId = await alice.CreateThreadAsync(cancellationToken: Guard);
        var url = new UriBuilder(app.Client.BaseAddress!) { Scheme = "ws", Path = "/ws" };

        using var anonymous = new ClientWebSocket();
        var refused = await Assert.ThrowsAnyAsync<WebSocketException>(() => anonymous.ConnectAsync(url.Uri, Guard));
        url.Query = $"access_token={AuthSettings.Token("bob")}";
        using var bob = new ClientWebSocket();
        await bob.ConnectAsync(url.Uri, Guard);
        await bob.SendTextAsync(JsonSerializer.Serialize(new { type = "chat", data = new { message = "B was here", thread_id = threadId } }), Guard);
        var error = await bob.ReceiveJsonAsync(Guard);
        await bob.SendChatAsync("hello", Guard);
        var own = await bob.ReceiveUntilAsync(SeedClient.IsWsRunEnd, Guard);
        var thread = await alice.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);

        Assert.Contains("401", refused.Message);
        Assert.Equal("error", error.WsType());
        Assert.Equal("thread_not_found", error.GetProperty("data").Str("code"));
        Assert.Equal("chat_complete", own[^1].WsType());
        Assert.Equal(0, thread.GetProperty("messageCount").GetInt32());
    }

    [Fact]
    public async Task Each_user_has_a_seed_003_conversation_of_their_own_with_an_agent()
    {
        await using var app = AuthSettings.App();
        var alice = app.ClientWith(AuthSettings.Token("alice"));
        var bob = app.ClientWith(AuthSettings.Token("bob"));

        using var aliceChat = await alice.PostAsJsonAsync("/chat", new { message = "hello" }, Guard);
        using var bobChat = await bob.PostAsJsonAsync("/chat", new { message = "hello" }, Guard);
        using var aliceAgain = await alice.PostAsJsonAsync("/chat", new { message = "again" }, Guard);
        var aliceThread = (await aliceChat.Content.ReadFromJsonAsync<JsonElement>(Guard)).Str("thread_id")!;
        var bobThread = (await bobChat.Content.ReadFromJsonAsync<JsonElement>(Guard)).Str("thread_id")!;
        var aliceAgainThread = (await aliceAgain.Content.ReadFromJsonAsync<JsonElement>(Guard)).Str("thread_id")!;
        using var bobReadsAlice = await bob.GetAsync($"/threads/{aliceThread}", Guard);

        Assert.Equal(HttpStatusCode.OK, aliceChat.StatusCode);
        Assert.Equal(HttpStatusCode.OK, bobChat.StatusCode);
        Assert.NotEqual(aliceThread, bobThread);
        Assert.Equal(aliceThread, aliceAgainThread);
        Assert.StartsWith("chat-default:", aliceThread);
        Assert.Equal(HttpStatusCode.NotFound, bobReadsAlice.StatusCode);
    }

    [Fact]
    public async Task An_event_stream_takes_its_token_from_the_query_where_an_EventSource_cannot_send_headers()
    {
        await using var app = AuthSettings.App();
        var alice = app.ClientWith(AuthSettings.Token("alice"));
        var threadId = await alice.CreateThreadAsync(cancellationToken: Guard);
        using var sent = await alice.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "hello" }, Guard);
        var runId = (await sent.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
        var anonymous = app.ClientWith(null);
        var token = AuthSettings.Token("alice");

        using var stream = await anonymous.OpenEventStreamAsync($"/threads/{threadId}/runs/{runId}/events?access_token={token}", cancellationToken: Guard);
        var events = await stream.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        using var notAStream = await anonymous.GetAsync($"/threads/{threadId}?access_token={token}", Guard);

        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Equal(HttpStatusCode.Unauthorized, notAStream.StatusCode);
    }
}
