using System.Net;
using System.Net.ServerSentEvents;
using System.Net.Sockets;
using System.Text;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Gateway;

/// <summary>
/// A subscriber that stops reading — a real socket with a small receive buffer that the test stops draining, while
/// the run pushes megabytes more than every buffer between them holds — is cut once its bounded buffer is full: the
/// run and the other subscribers go on unhindered, and the cut client resumes with <c>Last-Event-ID</c>, missing
/// nothing and seeing nothing twice.
/// </summary>
public sealed class SlowSubscriberTests
{
    private const int Deltas = 30_000;

    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_subscriber_that_stops_reading_is_cut_after_its_buffer_and_resumes_without_a_gap()
    {
        var release = new TaskCompletionSource();
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        // Each delta ~100 characters: some 6 MB of SSE in all, far beyond the kernel's socket buffers.
        var pieces = Enumerable.Range(0, Deltas).Select(i => $"{i:D6} " + new string('w', 93)).ToArray();
        model.Enqueue(ScriptedResponse.Text(pieces).HoldAfter(2, release.Task));
        var logs = new CapturedLogs();
        await using var app = GatewayApp.WithModel(
            model,
            new Dictionary<string, string?> { ["Streaming:SubscriberBufferCapacity"] = "256" },
            services => services.AddLogging(logging => logging.AddProvider(logs)));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        // The slow one: a raw socket that reads the response head and the first bytes, then nothing.
        using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await slow.ConnectAsync(client.BaseAddress!.Host, client.BaseAddress.Port, Guard);
        await slow.SendAsync(Encoding.ASCII.GetBytes(
            $"GET /threads/{threadId}/events HTTP/1.1\r\nHost: {client.BaseAddress.Authority}\r\nAccept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n"), Guard);
        var head = new byte[512];
        var headLength = await slow.ReceiveAsync(head, Guard);
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(head, 0, headLength), StringComparison.Ordinal);

        // A subscriber that reads everything, and the run.
        var readAll = ReadResumingAsync(client, threadId);
        using var send = await client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "talk a lot", wait = false }, Guard);
        Assert.Equal(HttpStatusCode.Accepted, send.StatusCode);
        release.SetResult();

        var (all, reconnects) = await readAll;
        Assert.Equal(all.Count, all.Select(e => e.Sequence).Distinct().Count());
        Assert.Equal("run.completed", all[^1].Type);
        var expectedText = string.Concat(pieces);
        Assert.Equal(expectedText, string.Concat(all.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));

        // Now the slow client reads what reached it: the stream breaks off before the run's end.
        var received = await DrainAsync(slow);
        var got = ParseEvents(received);
        Assert.DoesNotContain(got, e => e.EventType is "run.completed");
        Assert.True(got.Count < all.Count, $"The slow subscriber got {got.Count} of {all.Count} events: it was never cut.");
        Assert.Contains(logs.Lines, l => l.Message.Contains("fell too far behind", StringComparison.Ordinal) && l.Level <= LogLevel.Information);
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Error);

        // It resumes after the last event it got: together, exactly the thread's events.
        var last = got.Count == 0 ? "0" : got[^1].EventId!;
        using var resumed = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: last, cancellationToken: Guard);
        var rest = await resumed.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal(all.Select(e => e.Id), got.Select(e => e.EventId).Concat(rest.Select(e => e.Id)));
    }

    /// <summary>
    /// Reads the thread's events until the run ends as an <c>EventSource</c> does: a stream that breaks off (this reader
    /// too may fall behind a model this fast) is opened again after the last event received.
    /// </summary>
    private static async Task<(List<SseEvent> Events, int Reconnects)> ReadResumingAsync(HttpClient client, string threadId)
    {
        var events = new List<SseEvent>();
        for (var reconnects = 0; ; reconnects++)
        {
            using var stream = await client.OpenEventStreamAsync($"/threads/{threadId}/events", lastEventId: events.Count == 0 ? "0" : events[^1].Id, cancellationToken: Guard);
            try
            {
                await foreach (var e in stream.ReadEventsAsync(Guard))
                {
                    events.Add(e);
                    if (SseEvents.IsRunEnd(e))
                    {
                        return (events, reconnects);
                    }
                }
            }
            catch (IOException)
            {
                // Cut (the connection is aborted, so it may show as a reset): resume.
            }
        }
    }

    /// <summary>Reads until the server closes (or resets) the connection.</summary>
    private static async Task<byte[]> DrainAsync(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, Guard)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (SocketException)
        {
            // Reset: what had arrived before it is what the client got.
        }

        return received.ToArray();
    }

    /// <summary>The complete SSE items of a chunked response body (a partial last item is left out).</summary>
    private static List<SseItem<string>> ParseEvents(byte[] response)
    {
        var text = Encoding.UTF8.GetString(response);
        var body = new StringBuilder();
        var at = text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        // Chunked transfer coding: size line, data, CRLF.
        while (at > 3 && at < text.Length)
        {
            var lineEnd = text.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (lineEnd < 0 || !int.TryParse(text.AsSpan(at, lineEnd - at), System.Globalization.NumberStyles.HexNumber, null, out var size) || size == 0)
            {
                break;
            }

            var start = lineEnd + 2;
            body.Append(text.AsSpan(start, Math.Min(size, text.Length - start)));
            at = start + size + 2;
        }

        var complete = body.ToString();
        var end = complete.LastIndexOf("\n\n", StringComparison.Ordinal);
        complete = end < 0 ? "" : complete[..(end + 2)];
        var items = new List<SseItem<string>>();
        foreach (var item in SseParser.Create(new MemoryStream(Encoding.UTF8.GetBytes(complete))).Enumerate())
        {
            if (item.EventId is not null)
            {
                items.Add(item);
            }
        }

        return items;
    }
}
