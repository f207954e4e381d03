using System.Net;
using Conversations.Gateway.Streaming;
using Conversations.Tests.Models.Demo;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Gateway;

/// <summary>
/// SSE heartbeats follow a clock the test moves by hand (registered under <see cref="ServerSentEventsStream.ClockKey"/>),
/// so the gaps are asserted by their order on the wire, never by measuring time.
/// </summary>
public sealed class HeartbeatTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_heartbeat_comes_one_interval_after_the_last_event_not_at_the_next_tick_of_a_fixed_timer()
    {
        var clock = new ManualTimeProvider();
        await using var app = new GatewayApp(
            new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:15" },
            services => services.AddKeyedSingleton<TimeProvider>(ServerSentEventsStream.ClockKey, clock));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var response = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Guard));
        await WaitForTimerAsync(clock);

        // t = 10 s: a run's events are written, 5 s before the stream's first heartbeat was due.
        clock.Advance(TimeSpan.FromSeconds(10));
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "hi" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        var firstRun = await ReadThroughRunEndAsync(reader);
        Assert.DoesNotContain(": heartbeat", firstRun);

        // t = 15 s: only 5 s of silence, no heartbeat; t = 25 s: 15 s of silence since the events, the heartbeat is due.
        clock.Advance(Interval - TimeSpan.FromSeconds(10));
        await WaitForTimerAsync(clock);
        clock.Advance(TimeSpan.FromSeconds(10));

        // The next run's events are written after that moment: the heartbeat must come before them on the wire.
        // (A timer that ticks every 15 s from the start, skipping ticks that follow a write, stays silent until 30 s.)
        using (var sent = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "again" }, Guard))
        {
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        Assert.Equal(": heartbeat", await NextNonEmptyLineAsync(reader));
        Assert.StartsWith("event: run.started", await NextNonEmptyLineAsync(reader), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_stream_gets_a_heartbeat_every_interval_and_none_before()
    {
        var clock = new ManualTimeProvider();
        await using var app = new GatewayApp(
            new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:15" },
            services => services.AddKeyedSingleton<TimeProvider>(ServerSentEventsStream.ClockKey, clock));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);
        using var response = await client.OpenEventStreamAsync($"/threads/{threadId}/events", cancellationToken: Guard);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Guard));

        for (var i = 0; i < 3; i++)
        {
            await WaitForTimerAsync(clock);
            clock.Advance(Interval - TimeSpan.FromSeconds(1));
            await WaitForTimerAsync(clock);
            clock.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(": heartbeat", await NextNonEmptyLineAsync(reader));
        }

        // Nothing was written early: a run's events come next, not a heartbeat.
        using (await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "hi" }, Guard))
        {
        }

        Assert.StartsWith("event: run.started", await NextNonEmptyLineAsync(reader), StringComparison.Ordinal);
    }

    /// <summary>Waits until the stream's heartbeat timer is set (it is armed off the request's thread).</summary>
    private static async Task WaitForTimerAsync(ManualTimeProvider clock)
    {
        var guard = Guard;
        while (clock.PendingTimers == 0)
        {
            await Task.Delay(10, guard);
        }
    }

    private static async Task<List<string>> ReadThroughRunEndAsync(StreamReader reader)
    {
        var lines = new List<string>();
        var ending = false;
        while (await reader.ReadLineAsync(Guard) is { } line)
        {
            lines.Add(line);
            if (line is "event: run.completed" or "event: run.failed" or "event: run.cancelled")
            {
                ending = true;
            }
            else if (ending && line.Length == 0)
            {
                return lines;
            }
        }

        throw new InvalidOperationException($"The stream ended before the run did: {string.Join(" | ", lines)}");
    }

    private static async Task<string> NextNonEmptyLineAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync(Guard) is { } line)
        {
            if (line.Length > 0)
            {
                return line;
            }
        }

        throw new InvalidOperationException("The stream ended.");
    }
}
