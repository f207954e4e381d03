using System.Net;
using System.Text.Json;
using Conversations.Tests.Gateway;
using Conversations.Tests.Postgres;
using Conversations.Tests.Processes;
using Npgsql;

namespace Conversations.Tests.Cluster;

/// <summary>PostgreSQL goes away and comes back: requests fail fast with 503, nothing is half-written, service resumes.</summary>
public sealed class DatabaseOutageTests : PostgresTestBase
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task Without_PostgreSQL_requests_get_503_readiness_says_why_and_service_resumes_when_it_returns()
    {
        var server = new NpgsqlConnectionStringBuilder(Fixture.ConnectionString);
        var address = (await Dns.GetHostAddressesAsync(server.Host!, Guard)).First(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
        await using var relay = new TcpRelay(new IPEndPoint(address, server.Port));
        var viaRelay = new NpgsqlConnectionStringBuilder(Fixture.ConnectionString) { Host = "127.0.0.1", Port = relay.Port, Timeout = 3 }.ConnectionString;
        var shared = new Dictionary<string, string?>
        {
            ["Cluster__PostgresConnectionString"] = viaRelay,
            ["Cluster__Schema"] = Fixture.Schema,
            ["Cluster__ClusterId"] = Fixture.Schema,
            ["DemoModel__TokenDelay"] = "00:00:00",
        };
        await using var silo = await NodeProcess.StartSiloAsync(new Dictionary<string, string?>(shared), Guard);
        await using var gateway = await NodeProcess.StartGatewayAsync(shared, Guard);
        var client = gateway.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using (var first = await client.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "before" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        await relay.CutAsync();
        using var ready = await client.GetAsync("health/ready", Guard);
        using var create = await client.PostAsJsonAsync("threads", new { }, Guard);
        using var send = await client.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "during" }, Guard);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.NotEqual("ready", (await ready.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("checks").GetProperty("postgres").GetString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, create.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, send.StatusCode);
        Assert.Equal("application/problem+json", send.Content.Headers.ContentType?.MediaType);

        relay.Restore();
        while ((await client.GetAsync("health/ready", Guard)).StatusCode != HttpStatusCode.OK)
        {
            await Task.Delay(200, Guard);
        }

        JsonElement after;
        while (true)
        {
            // The silo may still be working through connections the outage broke; it recovers by itself.
            using var response = await client.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "after" }, Guard);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                after = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
                break;
            }

            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            await Task.Delay(200, Guard);
        }

        Assert.Equal("completed", after.GetProperty("status").GetString());
        var messages = (await client.GetFromJsonAsync<JsonElement>($"threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["before", "after"], messages.EnumerateArray().Where(m => m.GetProperty("role").GetString() == "user").Select(m => m.GetProperty("content").GetString()));
    }
}
