using System.Net;
using System.Text;
using System.Text.Json;
using Conversations.Grains.Webhooks;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>A send's webhook: the run's final state POSTed when it ends, signed, retried, never in the run's way.</summary>
public sealed class WebhookTests
{
    private const string Secret = "whsec-test-key";

    private static CancellationToken Guard => TestTimeouts.Guard();

    private static readonly Dictionary<string, string?> Signing = new()
    {
        ["Webhooks:SigningSecret"] = Secret,
        ["Webhooks:FirstRetryDelay"] = "00:00:00.050",
        ["Webhooks:MaxAttempts"] = "3",
    };

    [Fact]
    public async Task The_final_state_is_posted_signed_and_retried_after_a_server_error()
    {
        await using var receiver = await WebhookReceiver.StartAsync([500], cancellationToken: Guard);
        await using var app = new GatewayApp(Signing);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "What is 17 * 23?", webhook = receiver.Url }, Guard);
        var result = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        await receiver.WaitForAsync(2, Guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (failed, delivered) = (receiver.Requests[0], receiver.Requests[1]);
        Assert.Equal(failed.Body, delivered.Body);
        Assert.Equal(failed.Headers[RunWebhooks.DeliveryHeader], delivered.Headers[RunWebhooks.DeliveryHeader]); // one delivery, retried
        var payload = JsonDocument.Parse(delivered.Body).RootElement;
        Assert.Equal("run.ended", payload.GetProperty("type").GetString());
        Assert.Equal(threadId, payload.GetProperty("threadId").GetString());
        Assert.Equal(result.GetProperty("runId").GetString(), payload.GetProperty("run").GetProperty("id").GetString());
        Assert.Equal("completed", payload.GetProperty("run").GetProperty("status").GetString());
        Assert.Contains("391", payload.GetProperty("message").GetProperty("content").GetString(), StringComparison.Ordinal);

        // The signature: t=<unix seconds>,v1=<HMAC-SHA256 of "t.body"> with the configured key.
        var signature = delivered.Headers[RunWebhooks.SignatureHeader];
        var timestamp = long.Parse(signature.Split(',')[0]["t=".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(RunWebhooks.Sign(Secret, timestamp, Encoding.UTF8.GetBytes(delivered.Body)), signature);
        Assert.NotEqual(RunWebhooks.Sign("another key", timestamp, Encoding.UTF8.GetBytes(delivered.Body)), signature);
        Assert.DoesNotContain(Secret, delivered.Body + string.Join(' ', delivered.Headers.Values), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_receiver_that_keeps_failing_gets_a_bounded_number_of_attempts_and_the_run_is_unaffected()
    {
        await using var receiver = await WebhookReceiver.StartAsync([503], repeatLast: true, cancellationToken: Guard);
        await using var app = new GatewayApp(Signing);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "What is 2 + 2?", webhook = receiver.Url }, Guard);
        var result = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        await receiver.WaitForAsync(3, Guard);
        using var next = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "And 3 + 3?" }, Guard);

        Assert.Equal("completed", result.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, next.StatusCode); // the thread goes on
        var run = await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/runs/{result.GetProperty("runId").GetString()}", Guard);
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(receiver.Url.ToString(), run.GetProperty("webhook").GetString());
        Assert.Equal(3, receiver.Requests.Count); // MaxAttempts, and no more after the next run (it asked for none)
    }

    [Fact]
    public async Task A_webhook_is_refused_when_it_is_not_an_http_url_or_the_server_cannot_sign()
    {
        await using var signing = new GatewayApp(Signing);
        var threadId = await signing.Client.CreateThreadAsync(cancellationToken: Guard);
        using var notHttp = await signing.Client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", webhook = "file:///etc/passwd" }, Guard);
        using var relative = await signing.Client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "x", webhook = "/hook" }, Guard);
        await using var unsigned = new GatewayApp();
        var otherThread = await unsigned.Client.CreateThreadAsync(cancellationToken: Guard);
        using var noKey = await unsigned.Client.PostAsJsonAsync($"/threads/{otherThread}/messages", new { content = "x", webhook = "http://127.0.0.1:9/hook" }, Guard);

        foreach (var refused in new[] { notHttp, relative, noKey })
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.True((await refused.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors").TryGetProperty("webhook", out _));
        }

        Assert.Contains("Webhooks:SigningSecret", await noKey.Content.ReadAsStringAsync(Guard), StringComparison.Ordinal);
        Assert.Equal(0, (await signing.Client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}", Guard)).GetProperty("messageCount").GetInt32());
    }
}
