using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Compat.StreamingChat;

namespace Conversations.Tests.Gateway.Hostile;

/// <summary>
/// What a hostile newcomer tries, as one table over the native API and every dialect (and the WebSocket): malformed
/// and nested JSON, wrong types, invalid UTF-8 and lone surrogates, control characters, ids with path characters,
/// cursor garbage, huge URLs and headers, a flood. Each case must get a clear 4xx in its API's error shape — JSON that
/// names what is wrong, never a .NET type — and leave everything stored exactly as it was: the thread, its messages,
/// its runs, its events and the agents are read back byte for byte after every case.
/// </summary>
public sealed class HostileInputTests(HostileInputTests.Server server) : IClassFixture<HostileInputTests.Server>
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static readonly byte[] InvalidUtf8 = [0xFF, 0xFE, 0xC3];

    /// <summary>One hostile request: {T} in the path is the thread that has history, {R} its run.</summary>
    public sealed record Case(string Method, string Path, byte[]? Body, string? ContentType, int[] Statuses, string Mentions)
    {
        public (string Name, string Value)[] Headers { get; init; } = [];

        /// <summary>Kestrel refuses it while parsing the request line, before any middleware, with an empty body.</summary>
        public bool KestrelAnswers { get; init; }

        public override string ToString() => $"{Method} {Path}";
    }

    private static Case Json(string method, string path, string body, int status, string mentions) =>
        new(method, path, Encoding.UTF8.GetBytes(body), "application/json", [status], mentions);

    private static Case Bytes(string method, string path, byte[] body, int status, string mentions) =>
        new(method, path, body, "application/json", [status], mentions);

    private static byte[] Utf8(string prefix, byte[] middle, string suffix) =>
        [.. Encoding.UTF8.GetBytes(prefix), .. middle, .. Encoding.UTF8.GetBytes(suffix)];

    private static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    public static readonly IReadOnlyDictionary<string, Case> Cases = new Dictionary<string, Case>
    {
        // Native: the send.
        ["send: not JSON at all"] = Json("POST", "/threads/{T}/messages", "{", 400, "JSON"),
        ["send: truncated object"] = Json("POST", "/threads/{T}/messages", "{\"content\":", 400, "content"),
        ["send: content a number"] = Json("POST", "/threads/{T}/messages", "{\"content\":123}", 400, "content must be a string"),
        ["send: content null"] = Json("POST", "/threads/{T}/messages", "{\"content\":null}", 400, "content"),
        ["send: content empty"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"\"}", 400, "content"),
        ["send: content an array"] = Json("POST", "/threads/{T}/messages", "{\"content\":[\"a\"]}", 400, "content"),
        ["send: content an object"] = Json("POST", "/threads/{T}/messages", "{\"content\":{\"text\":\"a\"}}", 400, "content"),
        ["send: body an array"] = Json("POST", "/threads/{T}/messages", "[\"hi\"]", 400, "JSON object"),
        ["send: body a string"] = Json("POST", "/threads/{T}/messages", "\"hi\"", 400, "JSON object"),
        ["send: body null"] = Json("POST", "/threads/{T}/messages", "null", 400, "body"),
        ["send: empty body"] = Json("POST", "/threads/{T}/messages", "", 400, "body"),
        ["send: nested 10,000 deep"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"metadata\":" + Nested(10_000) + "}", 400, "depth"),
        ["send: invalid UTF-8"] = Bytes("POST", "/threads/{T}/messages", Utf8("{\"content\":\"", InvalidUtf8, "\"}"), 400, "UTF-8"),
        ["send: lone surrogate"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"a\\ud800b\"}", 400, "surrogate"),
        ["send: an escaped NUL"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"a\\u0000b\"}", 400, "NUL"),
        ["create: a message with an escaped NUL"] = Json("POST", "/threads", "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}]}", 400, "NUL"),
        ["openai: content with an escaped NUL"] = Json("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000\"}]}", 400, "NUL"),
        ["langbase: append an escaped NUL"] = Json("POST", "/v1/threads/{T}/messages", "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}]}", 400, "NUL"),
        ["chat: message with an escaped NUL"] = Json("POST", "/chat", "{\"message\":\"\\u0000\"}", 400, "NUL"),
        ["completion: message with an escaped NUL"] = Json("POST", "/completion", "{\"message\":\"\\u0000\"}", 400, "NUL"),
        ["send: raw control character"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"a\u0001b\"}", 400, "content"),
        ["send: content over the limit"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"" + new string('x', 100_001) + "\"}", 400, "content"),
        ["send: stream a string"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"stream\":\"yes\"}", 400, "stream"),
        ["send: wait a number"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"wait\":1}", 400, "wait"),
        ["send: agent a number"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"agent\":7}", 400, "agent"),
        ["send: unknown agent"] = new("POST", "/threads/{T}/messages", Encoding.UTF8.GetBytes("{\"content\":\"x\",\"agent\":\"no-such-agent\"}"), "application/json", [400, 404], "no-such-agent"),
        ["send: unknown strategy"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"multitaskStrategy\":\"chaos\"}", 400, "multitaskStrategy"),
        ["send: stale expectedLastSequence"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"expectedLastSequence\":1}", 409, "expectedLastSequence"),
        ["send: expectedLastSequence a string"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"expectedLastSequence\":\"abc\"}", 400, "expectedLastSequence"),
        ["send: stale expectedLastMessageId"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"expectedLastMessageId\":\"msg_nope\"}", 409, "expectedLastMessageId"),
        ["send: webhook not http"] = Json("POST", "/threads/{T}/messages", "{\"content\":\"x\",\"webhook\":\"file:///etc/passwd\"}", 400, "webhook"),
        ["send: text/plain"] = new("POST", "/threads/{T}/messages", Encoding.UTF8.GetBytes("hello"), "text/plain", [415], "Content-Type"),
        ["send: to a thread that does not exist"] = Json("POST", "/threads/thread_ghost/messages", "{\"content\":\"x\"}", 404, "thread_ghost"),
        ["send: id with an encoded slash"] = Json("POST", "/threads/{T}%2F..%2Fx/messages", "{\"content\":\"x\"}", 404, "not"),
        ["send: id with dot segments"] = Json("POST", "/threads/..%2F..%2Fagents/messages", "{\"content\":\"x\"}", 404, "not"),
        ["send: id with a NUL"] = Json("POST", "/threads/%00/messages", "{\"content\":\"x\"}", 400, "") with { KestrelAnswers = true },
        ["send: PUT is not a method of it"] = Json("PUT", "/threads/{T}/messages", "{\"content\":\"x\"}", 405, "PUT"),

        // Native: creating threads (the existing one must not change).
        ["create: the existing thread's id"] = Json("POST", "/threads", "{\"threadId\":\"{T}\",\"messages\":[{\"role\":\"user\",\"content\":\"overwrite\"}]}", 409, "{T}"),
        ["create: id with a slash"] = Json("POST", "/threads", "{\"threadId\":\"a/b\"}", 400, "threadId"),
        ["create: id 1,000 characters"] = Json("POST", "/threads", "{\"threadId\":\"" + new string('a', 1000) + "\"}", 400, "threadId"),
        ["create: metadata value a number"] = Json("POST", "/threads", "{\"metadata\":{\"k\":1}}", 400, "metadata.k"),
        ["create: metadata holding a NUL"] = Json("POST", "/threads", "{\"metadata\":{\"k\":\"a\\u0000\"}}", 400, "NUL"),
        ["langbase: create with metadata holding a NUL"] = Json("POST", "/v1/threads", "{\"metadata\":{\"k\":\"\\u0000\"}}", 400, "NUL"),
        ["create: 17 metadata pairs"] = Json("POST", "/threads", "{\"metadata\":{" + string.Join(",", Enumerable.Range(1, 17).Select(i => $"\"k{i}\":\"v\"")) + "}}", 400, "metadata"),
        ["create: a message of an unknown role"] = Json("POST", "/threads", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "role"),
        ["create: messages a string"] = Json("POST", "/threads", "{\"messages\":\"hello\"}", 400, "messages"),

        // Native: reads with bad cursors and pages.
        ["messages: limit not a number"] = Json("GET", "/threads/{T}/messages?limit=abc", "", 400, "limit"),
        ["messages: limit 0"] = Json("GET", "/threads/{T}/messages?limit=0", "", 400, "limit"),
        ["messages: limit 101"] = Json("GET", "/threads/{T}/messages?limit=101", "", 400, "limit"),
        ["messages: limit beyond int"] = Json("GET", "/threads/{T}/messages?limit=99999999999999", "", 400, "limit"),
        ["messages: after garbage"] = Json("GET", "/threads/{T}/messages?after=garbage", "", 400, "after"),
        ["events: after not a number"] = Json("GET", "/threads/{T}/events?after=abc", "", 400, "after"),
        ["events: after negative"] = Json("GET", "/threads/{T}/events?after=-1", "", 400, "after"),
        ["events: after past the end"] = Json("GET", "/threads/{T}/events?after=500", "", 400, "lastSequence"),
        ["events: Last-Event-ID garbage"] = Json("GET", "/threads/{T}/events", "", 400, "Last-Event-ID") with { Headers = [("Last-Event-ID", "abc")] },
        ["events: Last-Event-ID at long.MaxValue"] = Json("GET", "/threads/{T}/events", "", 400, "lastSequence") with { Headers = [("Last-Event-ID", "9223372036854775807")] },
        ["events: Last-Event-ID with a newline"] = Json("GET", "/threads/{T}/events", "", 400, "Last-Event-ID") with { Headers = [("Last-Event-ID", "5 6")] },
        ["events: unknown format"] = Json("GET", "/threads/{T}/events?format=xml", "", 400, "format"),
        ["run events: unknown format"] = Json("GET", "/threads/{T}/runs/{R}/events?format=../../etc", "", 400, "format"),
        ["runs: limit not a number"] = Json("GET", "/threads/{T}/runs?limit=abc", "", 400, "limit"),
        ["runs: offset negative"] = Json("GET", "/threads/{T}/runs?offset=-1", "", 400, "offset"),
        ["runs: a run that does not exist"] = Json("GET", "/threads/{T}/runs/run_nope", "", 404, "run_nope"),
        ["cancel: a run that does not exist"] = Json("POST", "/threads/{T}/runs/run_nope/cancel", "", 404, "run_nope"),
        ["tool outputs: body garbage"] = Json("POST", "/threads/{T}/runs/{R}/tool-outputs", "{\"toolOutputs\":5}", 400, "toolOutputs"),
        ["tool outputs: a run that waits for none"] = Json("POST", "/threads/{T}/runs/{R}/tool-outputs", "{\"toolOutputs\":[{\"toolCallId\":\"call_x\",\"output\":\"1\"}]}", 409, "call_x"),

        // Size limits.
        ["a URL of 10,000 bytes"] = Json("GET", "/threads/{T}/messages?pad=" + new string('x', 10_000), "", 414, "request target"),
        ["a header of 40,000 bytes"] = Json("GET", "/threads/{T}", "", 431, "X-Pad") with { Headers = [("X-Pad", new string('x', 40_000))] },
        ["150 headers"] = Json("GET", "/threads/{T}", "", 431, "header fields") with { Headers = [.. Enumerable.Range(1, 150).Select(i => ($"X-H{i}", "v"))] },

        // Agents (the native API and seed 003's) must not change.
        ["agent: instructions a number"] = Json("PATCH", "/agents/default", "{\"instructions\":5}", 400, "instructions"),
        ["agent: temperature 9"] = Json("PUT", "/agents/default", "{\"temperature\":9}", 400, "temperature"),
        ["agent: unknown field"] = Json("PATCH", "/agents/default", "{\"instruction\":\"Pirate.\"}", 400, "instruction"),
        ["agent: a name with a slash"] = Json("POST", "/agents", "{\"name\":\"a/b\"}", 400, "name"),
        ["agent: delete default"] = Json("DELETE", "/agents/default", "", 409, "default"),
        ["seed 003 agent: instructions a number"] = Json("POST", "/agents/default", "{\"instructions\":5}", 400, "instructions"),

        // OpenAI-compatible.
        ["openai: no messages"] = Json("POST", "/v1/chat/completions", "{}", 400, "messages"),
        ["openai: messages a string"] = Json("POST", "/v1/chat/completions", "{\"messages\":\"hi\"}", 400, "messages"),
        ["openai: content a number"] = Json("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":123}]}", 400, "content"),
        ["openai: empty messages"] = Json("POST", "/v1/chat/completions", "{\"messages\":[]}", 400, "messages"),
        ["openai: temperature a string"] = Json("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", 400, "temperature"),
        ["openai: stream a number"] = Json("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":1}", 400, "stream"),
        ["openai: invalid UTF-8"] = Bytes("POST", "/v1/chat/completions", Utf8("{\"messages\":[{\"role\":\"user\",\"content\":\"", InvalidUtf8, "\"}]}"), 400, "UTF-8"),
        ["openai: nested 10,000 deep"] = Json("POST", "/v1/chat/completions", "{\"messages\":" + Nested(10_000) + "}", 400, "messages[0]"),
        ["openai: unknown role"] = Json("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "role"),

        // Langbase (seed 002): appending to the thread must not go through with bad input.
        ["langbase: append content a number"] = Json("POST", "/v1/threads/{T}/messages", "{\"messages\":[{\"role\":\"user\",\"content\":1}]}", 400, "content"),
        ["langbase: append a string"] = Json("POST", "/v1/threads/{T}/messages", "\"hi\"", 400, "JSON object"),
        ["langbase: append invalid UTF-8"] = Bytes("POST", "/v1/threads/{T}/messages", Utf8("{\"messages\":[{\"role\":\"user\",\"content\":\"", InvalidUtf8, "\"}]}"), 400, "UTF-8"),
        ["langbase: pipe run without messages"] = Json("POST", "/v1/pipes/run", "{}", 400, "messages"),
        ["langbase: pipe run into the thread with a bad message"] = Json("POST", "/v1/pipes/run", "{\"threadId\":\"{T}\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "content"),

        // Seed 003 chat, seed 001 completion, seed 000 (AXMP).
        ["chat: message a number"] = Json("POST", "/chat/stream", "{\"message\":5}", 400, "message"),
        ["chat: empty object"] = Json("POST", "/chat", "{}", 400, "message"),
        ["chat: invalid UTF-8"] = Bytes("POST", "/chat", Utf8("{\"message\":\"", InvalidUtf8, "\"}"), 400, "UTF-8"),
        ["completion: no message"] = Json("POST", "/completion", "{}", 400, "message"),
        ["completion: stream a string"] = Json("POST", "/completion", "{\"message\":\"x\",\"stream\":\"yes\"}", 400, "stream"),
        ["axmp: prompt a number"] = Json("POST", "/conversations/{T}/completion", "{\"prompt\":5}", 400, "prompt"),
        ["axmp: invalid UTF-8"] = Bytes("POST", "/conversations/{T}/completion", Utf8("{\"prompt\":\"", InvalidUtf8, "\"}"), 400, "UTF-8"),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task A_hostile_request_gets_a_clear_4xx_and_leaves_everything_stored_as_it_was(string name)
    {
        var hostile = Cases[name];
        var before = await server.SnapshotAsync();

        using var request = new HttpRequestMessage(new HttpMethod(hostile.Method), server.Fill(hostile.Path));
        if (hostile.Body is { Length: > 0 } || hostile.Method is "POST" or "PUT" or "PATCH")
        {
            request.Content = new ByteArrayContent(hostile.Body is null ? [] : Encoding.UTF8.GetBytes(server.Fill(Encoding.UTF8.GetString(hostile.Body))) is var filled && hostile.Body.AsSpan().IndexOf("{T}"u8) >= 0 ? filled : hostile.Body ?? []);
            if (hostile.ContentType is not null)
            {
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(hostile.ContentType);
            }
        }

        foreach (var (header, value) in hostile.Headers)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        using var response = await server.App.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.True(hostile.Statuses.Contains((int)response.StatusCode), $"{name}: {(int)response.StatusCode} {text}");
        if (hostile.KestrelAnswers)
        {
            Assert.Equal(before, await server.SnapshotAsync());
            return;
        }

        Assert.Contains("json", response.Content.Headers.ContentType?.MediaType ?? "", StringComparison.Ordinal);
        using (JsonDocument.Parse(text))
        {
            // An error body is JSON in every API.
        }

        Assert.True(text.Contains(server.Fill(hostile.Mentions), StringComparison.OrdinalIgnoreCase), $"{name}: does not mention '{hostile.Mentions}': {text}");
        AssertNoInternals(text);
        Assert.Equal(before, await server.SnapshotAsync());
    }

    [Fact]
    public void The_table_has_at_least_sixty_cases_across_every_api() =>
        Assert.True(Cases.Count >= 60, $"{Cases.Count} cases");

    [Fact]
    public async Task Hostile_websocket_frames_get_errors_and_leave_everything_stored_as_it_was()
    {
        var before = await server.SnapshotAsync();
        using var socket = await server.App.ConnectWebSocketAsync(Guard);
        string[] frames =
        [
            "{", "[]", "null", "\"chat\"", "{\"type\":5}", "{\"type\":\"chat\"}", "{\"type\":\"chat\",\"data\":{\"message\":123}}",
            "{\"type\":\"chat\",\"data\":{\"message\":\"a\\ud800\"}}", "{\"type\":\"chat\",\"data\":" + Nested(5000) + "}",
        ];

        foreach (var frame in frames)
        {
            await socket.SendTextAsync(frame, Guard);
            JsonElement error;
            try
            {
                error = await socket.ReceiveJsonAsync(Guard);
            }
            catch (InvalidOperationException ex)
            {
                throw new InvalidOperationException($"After {frame[..Math.Min(frame.Length, 60)]}: {ex.Message} ({socket.CloseStatus} {socket.CloseStatusDescription})", ex);
            }

            Assert.True(error.GetProperty("type").GetString() == "error", $"{frame}: {error}");
            AssertNoInternals(error.GetRawText());
        }

        Assert.Equal(WebSocketState.Open, socket.State);

        // A text frame that is not UTF-8 breaks the protocol itself (RFC 6455 §8.1): the server closes with 1007.
        await socket.SendAsync(InvalidUtf8, WebSocketMessageType.Text, endOfMessage: true, Guard);
        var buffer = new byte[4096];
        WebSocketReceiveResult received;
        do
        {
            received = await socket.ReceiveAsync(buffer, Guard);
        }
        while (received.MessageType != WebSocketMessageType.Close);

        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, received.CloseStatus);
        Assert.Equal(before, await server.SnapshotAsync());
        using var next = await server.App.ConnectWebSocketAsync(Guard);
        Assert.Equal(WebSocketState.Open, next.State);
    }

    [Fact]
    public async Task A_flood_of_bad_sends_is_answered_400_each_and_the_thread_goes_on()
    {
        var before = await server.SnapshotAsync();
        var statuses = await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            using var response = await server.App.Client.PostAsync(
                server.Fill("/threads/{T}/messages"), new StringContent($"{{\"content\":{i}}}", Encoding.UTF8, "application/json"), Guard);
            return (int)response.StatusCode;
        }));

        Assert.All(statuses, s => Assert.Equal(400, s));
        Assert.Equal(before, await server.SnapshotAsync());
        using var health = await server.App.Client.GetAsync("/health/ready", Guard);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    private static void AssertNoInternals(string text)
    {
        foreach (var leak in new[] { "Conversations.", "System.", "Microsoft.", "Nullable", "could not be converted", "Failed to bind parameter", "   at " })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }

    /// <summary>One gateway for the whole table, with a thread that has a finished run; what it stores, as bytes.</summary>
    public sealed class Server : IAsyncLifetime
    {
        public GatewayApp App { get; } = new();

        public string ThreadId { get; private set; } = "";

        public string RunId { get; private set; } = "";

        public string Fill(string text) => text.Replace("{T}", ThreadId, StringComparison.Ordinal).Replace("{R}", RunId, StringComparison.Ordinal);

        public async ValueTask InitializeAsync()
        {
            var client = App.Client;
            ThreadId = await client.CreateThreadAsync(new { metadata = new { topic = "hostile" } }, Guard);
            using var send = await client.PostAsJsonAsync($"/threads/{ThreadId}/messages", new { content = "what is 17 * 23?" }, Guard);
            send.EnsureSuccessStatusCode();
            RunId = (await send.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("runId").GetString()!;
        }

        /// <summary>Everything stored that a hostile request could touch, as the API returns it.</summary>
        public async Task<string> SnapshotAsync()
        {
            var client = App.Client;
            var parts = new List<string>();
            foreach (var path in new[]
            {
                $"/threads/{ThreadId}", $"/threads/{ThreadId}/messages?limit=100", $"/threads/{ThreadId}/runs?limit=100",
                $"/threads/{ThreadId}/runs/{RunId}/events", $"/v1/threads/{ThreadId}/messages", "/agents?format=native", "/agents",
            })
            {
                parts.Add(path + "\n" + await client.GetStringAsync(path, Guard));
            }

            return string.Join("\n\n", parts);
        }

        public ValueTask DisposeAsync() => App.DisposeAsync();
    }
}
