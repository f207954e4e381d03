using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway.Limits;

/// <summary>
/// <c>Limits:MaxMessagesPerThread</c> and <c>Limits:MaxBytesPerThread</c>: a send that would take the thread over is
/// 409 ProblemDetails naming the limit, and nothing is stored. Enforced by the thread grain (both topologies).
/// </summary>
public sealed class ThreadStorageLimitTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_send_over_the_message_limit_is_409_naming_it_and_stores_nothing()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("ok"), ScriptedResponse.Text("never"));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Limits:MaxMessagesPerThread"] = "3" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { messages = new[] { new { role = "user", content = "kept" } } }, Guard);

        using var first = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "one" }, Guard);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var over = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "two" }, Guard);

        var problem = await AssertFullAsync(over, "Limits:MaxMessagesPerThread", 3);
        Assert.Equal(3, problem.GetProperty("current").GetInt64());
        Assert.Equal(["kept", "one", "ok"], await ContentsAsync(client, threadId));
        Assert.Single(model.Requests);
    }

    [Fact]
    public async Task A_send_over_the_byte_limit_is_409_naming_it_and_one_that_fits_is_taken()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("ok"), ScriptedResponse.Text("ok"));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Limits:MaxBytesPerThread"] = "100" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        // 60 bytes and the answer's 2: 62 stored.
        using var first = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = new string('a', 60) }, Guard);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        // 62 + 50 is over 100.
        using var over = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = new string('b', 50) }, Guard);
        await AssertFullAsync(over, "Limits:MaxBytesPerThread", 100);
        Assert.Equal(2, (await ContentsAsync(client, threadId)).Count);
        // 62 + 30 fits.
        using var fits = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = new string('c', 30) }, Guard);
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        Assert.Equal(4, (await ContentsAsync(client, threadId)).Count);
    }

    [Fact]
    public async Task The_limit_holds_in_the_openai_dialect_too()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("ok"), ScriptedResponse.Text("never"));
        await using var app = GatewayApp.WithModel(model, new Dictionary<string, string?> { ["Limits:MaxMessagesPerThread"] = "2" });
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var first = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "one" }, Guard);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "fake-model", messages = new[] { new { role = "user", content = "two" } }, thread_id = threadId }),
        };
        using var over = await client.SendAsync(request, Guard);

        var body = await over.Content.ReadAsStringAsync(Guard);
        Assert.True(over.StatusCode == HttpStatusCode.Conflict, $"{over.StatusCode}: {body}");
        Assert.Contains("Limits:MaxMessagesPerThread", body, StringComparison.Ordinal);
        Assert.Equal(["one", "ok"], await ContentsAsync(client, threadId));
    }

    private static async Task<JsonElement> AssertFullAsync(HttpResponseMessage response, string setting, long maximum)
    {
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(setting, problem.GetProperty("limit").GetString());
        Assert.Equal(maximum, problem.GetProperty("maximum").GetInt64());
        Assert.Contains(setting, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        return problem;
    }

    private static async Task<List<string?>> ContentsAsync(HttpClient client, string threadId) =>
        [.. (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString())];
}
