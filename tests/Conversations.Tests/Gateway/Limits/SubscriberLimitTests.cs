using System.Net;
using System.Text.Json;
using Conversations.Tests.Gateway.Auth;

namespace Conversations.Tests.Gateway.Limits;

/// <summary>
/// <c>Limits:MaxSubscribersPerThread</c> and <c>Limits:MaxSubscribersPerCaller</c> (per gateway): a stream over either
/// is 429 with Retry-After and ProblemDetails naming the limit; a closed stream frees its place. On by default with
/// authentication; an open (loopback) server does not count, so one local user may open many.
/// </summary>
public sealed class SubscriberLimitTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Streams_over_the_thread_or_caller_limit_are_429_and_a_closed_stream_frees_its_place()
    {
        await using var app = AuthSettings.App(new Dictionary<string, string?>
        {
            ["Limits:MaxSubscribersPerThread"] = "2",
            ["Limits:MaxSubscribersPerCaller"] = "3",
        });
        using var alice = app.ClientWith(AuthSettings.Token("alice"));
        using var admin = app.AdminKeyClient();
        var first = await alice.CreateThreadAsync(cancellationToken: Guard);
        var second = await alice.CreateThreadAsync(cancellationToken: Guard);

        var a1 = await alice.OpenEventStreamAsync($"/threads/{first}/events", cancellationToken: Guard);
        var a2 = await alice.OpenEventStreamAsync($"/threads/{first}/events", cancellationToken: Guard);
        // The thread is full, for another caller too.
        using var threadFull = await admin.OpenEventStreamAsync($"/threads/{first}/events", cancellationToken: Guard);
        using var a3 = await alice.OpenEventStreamAsync($"/threads/{second}/events", cancellationToken: Guard);
        // Alice holds three: the caller limit.
        using var callerFull = await alice.OpenEventStreamAsync($"/threads/{second}/events", cancellationToken: Guard);
        // The admin is another caller, and the second thread has room.
        using var adminOk = await admin.OpenEventStreamAsync($"/threads/{second}/events", cancellationToken: Guard);

        Assert.Equal(HttpStatusCode.OK, a1.StatusCode);
        Assert.Equal(HttpStatusCode.OK, a2.StatusCode);
        Assert.Equal(HttpStatusCode.OK, a3.StatusCode);
        Assert.Equal(HttpStatusCode.OK, adminOk.StatusCode);
        await AssertRefusedAsync(threadFull, "Limits:MaxSubscribersPerThread", 2);
        await AssertRefusedAsync(callerFull, "Limits:MaxSubscribersPerCaller", 3);

        // Closing a stream frees its place (once the server sees the connection go).
        a1.Dispose();
        a2.Dispose();
        var reopened = await TestTimeouts.EventuallyAsync(
            async () =>
            {
                var response = await alice.OpenEventStreamAsync($"/threads/{first}/events", cancellationToken: Guard);
                var status = response.StatusCode;
                if (status != HttpStatusCode.OK)
                {
                    response.Dispose();
                    await Task.Delay(50, Guard);
                    return null;
                }

                return response;
            },
            response => response is not null);
        using (reopened)
        {
            Assert.Equal(HttpStatusCode.OK, reopened!.StatusCode);
        }
    }

    [Fact]
    public async Task An_open_loopback_server_does_not_count_streams_unless_told_to()
    {
        var tight = new Dictionary<string, string?> { ["Limits:MaxSubscribersPerThread"] = "2", ["Limits:MaxSubscribersPerCaller"] = "2" };
        await using (var open = new GatewayApp(tight))
        {
            var threadId = await open.Client.CreateThreadAsync(cancellationToken: Guard);
            var streams = new List<HttpResponseMessage>();
            for (var i = 0; i < 5; i++)
            {
                streams.Add(await open.Client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard));
            }

            Assert.All(streams, s => Assert.Equal(HttpStatusCode.OK, s.StatusCode));
            streams.ForEach(s => s.Dispose());
        }

        await using var enabled = new GatewayApp(new Dictionary<string, string?>(tight) { ["Limits:SubscriberLimitsEnabled"] = "true" });
        var thread = await enabled.Client.CreateThreadAsync(cancellationToken: Guard);
        using var one = await enabled.Client.OpenEventStreamAsync($"/threads/{thread}/events", cancellationToken: Guard);
        using var two = await enabled.Client.OpenEventStreamAsync($"/threads/{thread}/events", cancellationToken: Guard);
        using var three = await enabled.Client.OpenEventStreamAsync($"/threads/{thread}/events", cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, three.StatusCode);
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response, string setting, int maximum)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(setting, problem.GetProperty("limit").GetString());
        Assert.Equal(maximum, problem.GetProperty("maximum").GetInt32());
    }
}
