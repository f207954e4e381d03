using System.Text.Json;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Conversations.Tests.Gateway;

/// <summary>What a stopping server tells its clients, and the documents it serves.</summary>
public sealed class ShutdownAndDocsTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    /// <summary>Embedded: it stops the process that co-hosts the silo (a cluster gateway holds no runs to end).</summary>
    [Fact]
    public async Task Stopping_the_server_ends_an_active_run_with_a_reason_every_subscriber_sees()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("half an ans").HangAfter(2));
        await using var app = GatewayApp.EmbeddedWithModel(model);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "go", stream = true }, Guard);
        await using var events = response.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        while (await events.MoveNextAsync() && events.Current.Type != "text.delta")
        {
        }

        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>();
        stopping.StopApplication();
        var rest = new List<SseEvent>();
        while (await events.MoveNextAsync())
        {
            rest.Add(events.Current);
        }

        var failed = Assert.Single(rest, e => e.Type == "run.failed");
        Assert.Equal("interrupted", failed.Data.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("incomplete", Assert.Single(rest, e => e.Type == "message.completed").Str("status"));
    }

    [Fact]
    public async Task OpenApi_document_and_health_are_served()
    {
        await using var app = new GatewayApp();

        var openApi = await app.Client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", Guard);
        var health = await app.Client.GetFromJsonAsync<JsonElement>("/health", Guard);
        var ready = await app.Client.GetFromJsonAsync<JsonElement>("/health/ready", Guard);

        var paths = openApi.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/threads/{threadId}/messages", out _));
        Assert.True(paths.TryGetProperty("/threads/{threadId}/events", out _));
        Assert.Equal("healthy", health.GetProperty("status").GetString());
        Assert.Equal("demo", health.GetProperty("model").GetString());
        Assert.Equal(["calculate", "get_time"], health.GetProperty("tools").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(app.ModeName, health.GetProperty("mode").GetString());
        Assert.Equal("ready", ready.GetProperty("status").GetString());
        Assert.Equal("ready", ready.GetProperty("checks").GetProperty(app.StorageCheckName).GetString());
    }
}
