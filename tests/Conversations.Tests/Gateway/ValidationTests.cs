using System.Net;
using System.Text;
using System.Text.Json;

namespace Conversations.Tests.Gateway;

/// <summary>Bad input gets a clear error naming the field, and nothing stored is touched.</summary>
public sealed class ValidationTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Theory]
    [InlineData("GET", "/threads/nope")]
    [InlineData("GET", "/threads/nope/messages")]
    [InlineData("GET", "/threads/nope/events")]
    [InlineData("POST", "/threads/nope/messages")]
    [InlineData("GET", "/threads/nope/runs/run_1")]
    public async Task Unknown_thread_is_404_problem(string method, string path)
    {
        await using var app = new GatewayApp();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST")
        {
            request.Content = JsonContent.Create(new { content = "hi" });
        }

        using var response = await app.Client.SendAsync(request, Guard);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("{\"content\": \"hi\", \"stream\": \"yes\"}", "stream")]
    [InlineData("{\"content\": 42}", "content")]
    [InlineData("{\"content\": \"\"}", "content")]
    [InlineData("{}", "content")]
    [InlineData("{\"content\": \"hi\", \"agent\": \"nobody\"}", "agent")]
    [InlineData("{\"content\": \"hi\"", "body")]
    public async Task Bad_message_body_is_400_naming_the_field_and_stores_nothing(string body, string field)
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { messages = new[] { new { role = "user", content = "kept" } } }, Guard);

        using var response = await client.PostAsync(
            $"/threads/{threadId}/messages", new StringContent(body, Encoding.UTF8, "application/json"), Guard);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.GetRawText());
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["kept"], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task Creating_a_thread_validates_id_roles_and_metadata_and_rejects_duplicates()
    {
        await using var app = new GatewayApp();
        var client = app.Client;

        using var badId = await client.PostAsJsonAsync("/threads", new { threadId = "has spaces" }, Guard);
        using var badRole = await client.PostAsJsonAsync("/threads", new { messages = new[] { new { role = "tool", content = "x" } } }, Guard);
        using var created = await client.PostAsJsonAsync("/threads", new { threadId = "t-1", metadata = new { topic = "support" } }, Guard);
        using var duplicate = await client.PostAsJsonAsync("/threads", new { threadId = "t-1" }, Guard);

        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);
        Assert.Contains("threadId", await badId.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);
        Assert.Contains("messages[0].role", await badRole.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/threads/t-1", created.Headers.Location?.ToString());
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        var thread = await client.GetFromJsonAsync<JsonElement>("/threads/t-1", Guard);
        Assert.Equal("support", thread.GetProperty("metadata").GetProperty("topic").GetString());
    }

    [Fact]
    public async Task Bad_resume_cursor_and_page_limit_are_400_naming_the_parameter()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var badHeader = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: "abc", cancellationToken: Guard);
        using var badLimit = await client.GetAsync($"/threads/{threadId}/messages?limit=0", Guard);

        Assert.Equal(HttpStatusCode.BadRequest, badHeader.StatusCode);
        Assert.Contains("Last-Event-ID", await badHeader.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
        Assert.Contains("limit", await badLimit.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Messages_page_in_chronological_order()
    {
        await using var app = new GatewayApp();
        var client = app.Client;
        var initial = Enumerable.Range(1, 5).Select(i => new { role = i % 2 == 1 ? "user" : "assistant", content = $"m{i}" }).ToArray();
        var threadId = await client.CreateThreadAsync(new { messages = initial }, Guard);

        var first = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages?limit=2", Guard);
        var second = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages?limit=10&after={first.GetProperty("lastId").GetString()}", Guard);

        Assert.Equal(["m1", "m2"], first.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        Assert.True(first.GetProperty("hasMore").GetBoolean());
        Assert.Equal(["m3", "m4", "m5"], second.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        Assert.False(second.GetProperty("hasMore").GetBoolean());
    }
}
