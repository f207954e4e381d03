using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Conversations.Tests.Compat.StreamingChat;

namespace Conversations.Tests.Gateway;

/// <summary>
/// Bad input is answered in a client developer's words, naming the field, in the API's error shape (ProblemDetails
/// natively, the dialect's own elsewhere) — never with a .NET type, a parameter signature or an empty body.
/// </summary>
public sealed class ErrorMessageTests
{
    private static readonly byte[] InvalidUtf8Content = [.. "{\"content\":\""u8, 0xFF, 0xFE, .. "\"}"u8];

    private static CancellationToken Guard => TestTimeouts.Guard();

    public static TheoryData<string, string, string> NativeBodies() => new()
    {
        // path (…/{thread} replaced), body, the field, its message
        { "messages", "{\"content\":123}", "content|content must be a string." },
        { "messages", "{\"content\":\"a\\ud800\"}", "content|content holds a \\u escape of a lone UTF-16 surrogate" },
        { "messages", "{\"content\":\"hi\",\"stream\":\"yes\"}", "stream|stream must be true or false." },
        { "messages", "[\"hi\"]", "body|The request body must be a JSON object." },
        { "messages", "{\"content\":}", "content|content is not valid JSON: '}' is an invalid start of a value (line 1, byte 12)." },
        { "messages", "{\"content\":\"a\u0001b\"}", "content|content is not valid JSON: '0x01' is invalid within a JSON string" },
        { "create", "{\"metadata\":{\"topic\":5}}", "metadata.topic|metadata.topic must be a string." },
        { "create", "{\"messages\":\"hello\"}", "messages|messages must be an array of objects." },
        { "create", "{\"messages\":[{\"role\":\"user\",\"content\":[1]}]}", "messages[0].content|messages[0].content must be a string." },
        { "create", "{\"threadId\":{}}", "threadId|threadId must be a string." },
    };

    [Theory]
    [MemberData(nameof(NativeBodies))]
    public async Task A_native_body_of_the_wrong_shape_is_400_naming_the_field_in_words(string endpoint, string body, string expected)
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        var path = endpoint == "create" ? "/threads" : $"/threads/{threadId}/messages";

        using var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), Guard);

        await AssertFieldProblemAsync(response, HttpStatusCode.BadRequest, expected);
    }

    [Fact]
    public async Task Invalid_utf8_in_a_native_body_is_400_naming_the_field()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostAsync($"/threads/{threadId}/messages", Json(InvalidUtf8Content), Guard);

        await AssertFieldProblemAsync(response, HttpStatusCode.BadRequest, "content|content is not valid UTF-8 text.");
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("0")]
    [InlineData("101")]
    public async Task A_page_limit_that_is_not_an_integer_in_range_is_400_under_limit(string limit)
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.GetAsync($"/threads/{threadId}/messages?limit={limit}", Guard);

        await AssertFieldProblemAsync(response, HttpStatusCode.BadRequest, "limit|limit must be an integer between 1 and 100.");
    }

    [Fact]
    public async Task The_openapi_document_still_says_limit_is_an_integer_from_1_to_100()
    {
        await using var app = new GatewayApp();

        var document = await app.Client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", Guard);

        var limit = document.GetProperty("paths").GetProperty("/threads/{threadId}/messages").GetProperty("get").GetProperty("parameters")
            .EnumerateArray().Single(p => p.GetProperty("name").GetString() == "limit");
        Assert.Equal("integer", limit.GetProperty("schema").GetProperty("type").GetString());
        Assert.Equal(100, limit.GetProperty("schema").GetProperty("maximum").GetInt32());
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_415_naming_the_content_type()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostAsync($"/threads/{threadId}/messages", new StringContent("content=hi", Encoding.UTF8, "text/plain"), Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith(
            "The request body must be JSON: send Content-Type: application/json (got 'text/plain",
            JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString(),
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_url_over_the_limit_is_414_problem_details()
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.GetAsync($"/threads/{new string('a', 12_000)}", Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.RequestUriTooLong, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(414, problem.GetProperty("status").GetInt32());
        Assert.Contains("at most 8192", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(8192, problem.GetProperty("limit").GetInt32());
    }

    [Fact]
    public async Task Headers_over_the_limit_are_431_problem_details_naming_the_largest()
    {
        await using var app = new GatewayApp();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Add("X-Huge", new string('h', 40_000));

        using var response = await app.Client.SendAsync(request, Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(431, problem.GetProperty("status").GetInt32());
        Assert.Contains("'X-Huge'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("at most 32768", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_headers_are_431_problem_details()
    {
        await using var app = new GatewayApp();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        for (var i = 0; i < 150; i++)
        {
            request.Headers.Add($"X-Many-{i}", "x");
        }

        using var response = await app.Client.SendAsync(request, Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        Assert.Contains("at most 100", JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> OpenAiShapedBodies() => new()
    {
        // path, body, param|message
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":\"hot\"}", "temperature|'temperature' must be a number." },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":5,\"content\":\"hi\"}]}", "messages[0].role|'messages[0].role' must be a string." },
        { "/v1/chat/completions", "{\"messages\":{}}", "messages|'messages' must be an array of objects." },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\udc00\"}]}", "messages[0].content|'messages[0].content' holds a \\u escape of a lone UTF-16 surrogate" },
        { "/v1/chat/completions", "{\"messages\":[", "messages[0]|'messages[0]' is not valid JSON: " },
        { "/v1/pipes/run", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":\"x\"}", "stream|'stream' must be true or false." },
        { "/v1/pipes/run", "{\"threadId\":7,\"messages\":[]}", "threadId|'threadId' must be a string." },
        { "/v1/threads", "{\"metadata\":[]}", "metadata|'metadata' must be an object whose values are strings." },
        { "/v1/threads/{thread}/messages", "[{\"role\":5,\"content\":\"x\"}]", "messages[0].role|'messages[0].role' must be a string." },
        { "/v1/threads/{thread}/messages", "{\"messages\":[{\"role\":\"user\",\"name\":1}]}", "messages[0].name|'messages[0].name' must be a string." },
    };

    [Theory]
    [MemberData(nameof(OpenAiShapedBodies))]
    public async Task An_openai_shaped_body_of_the_wrong_shape_is_400_with_param_and_words(string path, string body, string expected)
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        if (path.Contains("{thread}", StringComparison.Ordinal))
        {
            path = path.Replace("{thread}", await client.CreateThreadAsync(cancellationToken: Guard), StringComparison.Ordinal);
        }

        using var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertNoInternals(text);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        var (param, message) = Split(expected);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param.Length == 0 ? null : param, error.GetProperty("param").GetString());
        Assert.StartsWith(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_in_an_openai_body_is_400_naming_the_field()
    {
        await using var app = new GatewayApp();
        byte[] body = [.. "{\"messages\":[{\"role\":\"user\",\"content\":\""u8, 0xC3, 0x28, .. "\"}]}"u8];

        using var response = await app.Client.PostAsync("/v1/chat/completions", Json(body), Guard);
        var text = await response.Content.ReadAsStringAsync(Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("messages[0].content", error.GetProperty("param").GetString());
        Assert.Equal("'messages[0].content' is not valid UTF-8 text.", error.GetProperty("message").GetString());
    }

    public static TheoryData<string, string, string> SeedBodies() => new()
    {
        // path, body, field|message (seed 003: ProblemDetails; seed 001: {error}; seed 000: Anthropic's {error: {message}})
        { "/chat", "{\"message\":123}", "message|message must be a string." },
        { "/chat/stream", "{\"message\":\"hi\",\"reset_history\":\"no\"}", "reset_history|reset_history must be true or false." },
        { "/agents/helper", "{\"max_parallel_tools\":\"many\"}", "max_parallel_tools|max_parallel_tools must be an integer." },
        { "/agents/helper", "{\"tools\":\"calculate\"}", "tools|tools must be an array of strings." },
        { "/completion", "{\"message\":1}", "|message must be a string." },
        { "/completion", "{\"message\":\"hi\",\"conversation_history\":[{\"role\":\"user\",\"content\":{}}]}", "|conversation_history[0].content must be a string." },
        { "/conversations/t-1/completion", "{\"prompt\":[]}", "|prompt: prompt must be a string." },
        { "/conversations/t-1/completion", "{\"prompt\":\"hi\",\"temperature\":\"warm\"}", "|temperature: temperature must be a number." },
    };

    [Theory]
    [MemberData(nameof(SeedBodies))]
    public async Task A_seed_dialect_body_of_the_wrong_shape_is_400_in_its_shape_naming_the_field(string path, string body, string expected)
    {
        await using var app = new GatewayApp();

        using var response = await app.Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), Guard);

        if (path.StartsWith("/chat", StringComparison.Ordinal) || path.StartsWith("/agents", StringComparison.Ordinal))
        {
            await AssertFieldProblemAsync(response, HttpStatusCode.BadRequest, expected);
            return;
        }

        var text = await response.Content.ReadAsStringAsync(Guard);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertNoInternals(text);
        var root = JsonDocument.Parse(text).RootElement;
        var message = path == "/completion"
            ? root.GetProperty("error").GetString()
            : root.GetProperty("error").GetProperty("message").GetString();
        Assert.Equal(Split(expected).Message, message);
    }

    [Fact]
    public async Task The_websocket_names_the_field_in_words_and_stays_open()
    {
        await using var app = new GatewayApp();
        using var socket = await app.ConnectWebSocketAsync(Guard);

        await socket.SendTextAsync("{\"type\":\"chat\",\"data\":{\"message\":123}}", Guard);
        var wrongType = await socket.ReceiveJsonAsync(Guard);
        await socket.SendTextAsync("{\"type\":\"chat\",\"data\":{\"message\":\"a\\ud800\"}}", Guard);
        var surrogate = await socket.ReceiveJsonAsync(Guard);
        await socket.SendTextAsync("{\"type\":\"chat\",", Guard);
        var truncated = await socket.ReceiveJsonAsync(Guard);

        foreach (var error in new[] { wrongType, surrogate, truncated })
        {
            AssertNoInternals(error.GetRawText());
            Assert.Equal("invalid_json", error.GetProperty("data").GetProperty("code").GetString());
        }

        Assert.Equal("data.message: must be a string.", wrongType.GetProperty("data").GetProperty("error").GetString());
        Assert.StartsWith("data.message: holds a \\u escape of a lone UTF-16 surrogate", surrogate.GetProperty("data").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("message: the message is not valid JSON: ", truncated.GetProperty("data").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(WebSocketState.Open, socket.State);
    }

    private static ByteArrayContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary><paramref name="expected"/> is <c>field|message start</c>.</summary>
    private static async Task AssertFieldProblemAsync(HttpResponseMessage response, HttpStatusCode status, string expected)
    {
        var text = await response.Content.ReadAsStringAsync(Guard);
        Assert.True(status == response.StatusCode, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        AssertNoInternals(text);
        var (field, message) = Split(expected);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), text);
        Assert.StartsWith(message, Assert.Single(messages.EnumerateArray()).GetString(), StringComparison.Ordinal);
    }

    private static (string Field, string Message) Split(string expected)
    {
        var bar = expected.IndexOf('|', StringComparison.Ordinal);
        return (expected[..bar], expected[(bar + 1)..]);
    }

    private static void AssertNoInternals(string text)
    {
        foreach (var leak in new[] { "Conversations.", "System.", "Nullable<", "could not be converted", "Request\"", "Failed to bind parameter" })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }
}
