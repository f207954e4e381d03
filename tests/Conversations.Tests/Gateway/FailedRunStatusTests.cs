using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>
/// What a non-streaming request answers when its run fails, per dialect (README, "Errors"): the native API 200 with
/// the run's status; OpenAI chat completions, Langbase's pipe run and seed 003's <c>/chat</c> 503 for an unavailable
/// model, 502 for a model error, 409 for a cancelled run; seed 001's <c>/completion</c> the 500 its seed documents.
/// </summary>
public sealed class FailedRunStatusTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    public static TheoryData<string, int, string> Dialects() => new()
    {
        // The model endpoint: 503 (unavailable, try later) and 401 (an error answer).
        { "native", 503, "model_unavailable" },
        { "native", 401, "model_error" },
        { "openai", 503, "model_unavailable" },
        { "openai", 401, "model_error" },
        { "langbase", 503, "model_unavailable" },
        { "langbase", 401, "model_error" },
        { "chat", 503, "model_unavailable" },
        { "chat", 401, "model_error" },
        { "completion", 503, "model_unavailable" },
        { "completion", 401, "model_error" },
    };

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task A_failed_run_answers_by_the_dialects_rule(string dialect, int modelStatus, string code)
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Error(modelStatus, "The upstream said no."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;

        var (status, body) = await SendAsync(client, dialect);

        switch (dialect)
        {
            case "native":
                Assert.Equal(HttpStatusCode.OK, status);
                Assert.Equal("failed", body.GetProperty("status").GetString());
                Assert.Equal(code, body.GetProperty("error").GetProperty("code").GetString());
                break;
            case "openai" or "langbase":
                Assert.Equal(code == "model_unavailable" ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.BadGateway, status);
                Assert.Equal(code, body.GetProperty("error").GetProperty("code").GetString());
                Assert.Equal("server_error", body.GetProperty("error").GetProperty("type").GetString());
                Assert.Contains("The upstream said no.", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
                break;
            case "chat":
                Assert.Equal(code == "model_unavailable" ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.BadGateway, status);
                Assert.Equal(code, body.GetProperty("code").GetString());
                Assert.Equal((int)status, body.GetProperty("status").GetInt32());
                break;
            case "completion":
                Assert.Equal(HttpStatusCode.InternalServerError, status);
                Assert.StartsWith("Completion failed: ", body.GetProperty("error").GetString(), StringComparison.Ordinal);
                Assert.Contains("The upstream said no.", body.GetProperty("error").GetString(), StringComparison.Ordinal);
                break;
        }

        Assert.DoesNotContain("SECRET", body.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_model_is_503_in_openai_shape_and_200_failed_natively()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var app = new GatewayApp(new Dictionary<string, string?>
        {
            ["OPENAI_BASE_URL"] = $"http://127.0.0.1:{closedPort}/v1",
            ["OPENAI_API_KEY"] = "sk-test-SECRET",
            ["OpenAI:MaxRetries"] = "0",
        });
        var client = app.Client;

        var (openAiStatus, openAi) = await SendAsync(client, "openai");
        var (nativeStatus, native) = await SendAsync(client, "native");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, openAiStatus);
        Assert.Equal("model_unavailable", openAi.GetProperty("error").GetProperty("code").GetString());
        Assert.StartsWith("The model endpoint could not be reached", openAi.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, nativeStatus);
        Assert.Equal("model_unavailable", native.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_run_cancelled_by_another_request_is_409_in_openai_shape()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Hang());
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { messages = new[] { new { role = "user", content = "hi" } } }),
        };
        request.Headers.Add("X-Thread-Id", threadId);
        var completion = client.SendAsync(request, Guard);

        await model.WaitForRequestAsync(1, Guard);
        var thread = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard);
        using (var cancel = await client.PostAsync($"/threads/{threadId}/runs/{thread.GetProperty("activeRunId").GetString()}/cancel", null, Guard))
        {
            Assert.True(cancel.IsSuccessStatusCode);
        }

        using var response = await completion;
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("run_cancelled", body.GetProperty("error").GetProperty("code").GetString());
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient client, string dialect)
    {
        var messages = new[] { new { role = "user", content = "hi" } };
        HttpResponseMessage response;
        switch (dialect)
        {
            case "native":
                var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
                response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "hi" }, Guard);
                break;
            case "openai":
                response = await client.PostAsJsonAsync("/v1/chat/completions", new { messages }, Guard);
                break;
            case "langbase":
                response = await client.PostAsJsonAsync("/v1/pipes/run", new { messages }, Guard);
                break;
            case "chat":
                response = await client.PostAsJsonAsync("/chat", new { message = "hi", thread_id = $"chat-{Guid.NewGuid():N}" }, Guard);
                break;
            default:
                response = await client.PostAsJsonAsync("/completion", new { message = "hi" }, Guard);
                break;
        }

        using (response)
        {
            return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>(Guard));
        }
    }
}
