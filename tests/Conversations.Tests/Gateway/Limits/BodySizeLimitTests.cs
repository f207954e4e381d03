using System.Net;
using System.Text;
using System.Text.Json;

namespace Conversations.Tests.Gateway.Limits;

/// <summary><c>Limits:MaxRequestBodyBytes</c>: a body over it is 413 ProblemDetails naming the limit, with or without Content-Length.</summary>
public sealed class BodySizeLimitTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static readonly Dictionary<string, string?> Small = new() { ["Limits:MaxRequestBodyBytes"] = "4096" };

    [Fact]
    public async Task A_body_over_the_limit_with_content_length_is_413_naming_the_limit_and_stores_nothing()
    {
        await using var app = new GatewayApp(Small);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { messages = new[] { new { role = "user", content = "kept" } } }, Guard);

        using var content = new StringContent(Body(6000), Encoding.UTF8, "application/json");
        using var response = await client.PostAsync($"/threads/{threadId}/messages", content, Guard);

        await AssertTooLargeAsync(response, 4096);
        await AssertHistoryAsync(app, threadId);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_413_naming_the_limit_and_stores_nothing()
    {
        await using var app = new GatewayApp(Small);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(new { messages = new[] { new { role = "user", content = "kept" } } }, Guard);

        using var content = new StreamContent(new UnknownLengthStream(Encoding.UTF8.GetBytes(Body(6000))));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/threads/{threadId}/messages") { Content = content };
        using var response = await client.SendAsync(request, Guard);

        Assert.True(request.Headers.TransferEncodingChunked ?? content.Headers.ContentLength is null, "The body was sent with a length.");
        await AssertTooLargeAsync(response, 4096);
        await AssertHistoryAsync(app, threadId);
    }

    [Fact]
    public async Task A_body_under_the_limit_is_taken_and_the_default_limit_is_one_mebibyte()
    {
        await using var small = new GatewayApp(Small);
        var threadId = await small.Client.CreateThreadAsync(cancellationToken: Guard);
        using var under = await small.Client.PostAsync(
            $"/threads/{threadId}/messages", new StringContent(Body(3000), Encoding.UTF8, "application/json"), Guard);
        Assert.True(under.IsSuccessStatusCode, $"{under.StatusCode}: {await under.Content.ReadAsStringAsync(Guard)}");

        await using var defaults = new GatewayApp();
        // Over 1 MiB, and only the length is looked at: the connection closes without reading it.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/threads") { Content = new StringContent(Body((1024 * 1024) + 10), Encoding.UTF8, "application/json") };
        HttpResponseMessage? response = null;
        try
        {
            response = await defaults.Client.SendAsync(request, Guard);
        }
        catch (HttpRequestException)
        {
            // The server may close before the client finished writing 1 MiB: then ask with a small body what the limit is.
        }

        if (response is not null)
        {
            using (response)
            {
                await AssertTooLargeAsync(response, 1024 * 1024);
            }
        }
        else
        {
            using var chunked = new StreamContent(new UnknownLengthStream(Encoding.UTF8.GetBytes(Body((1024 * 1024) + 10))));
            chunked.Headers.ContentType = new("application/json");
            using var retry = await defaults.Client.PostAsync("/threads", chunked, Guard);
            await AssertTooLargeAsync(retry, 1024 * 1024);
        }
    }

    /// <summary>A message body of about <paramref name="bytes"/> bytes.</summary>
    private static string Body(int bytes) => JsonSerializer.Serialize(new { content = new string('a', Math.Max(1, bytes - 20)) });

    private static async Task AssertTooLargeAsync(HttpResponseMessage response, long limit)
    {
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Guard);
        Assert.Equal(413, problem.GetProperty("status").GetInt32());
        Assert.Equal("Limits:MaxRequestBodyBytes", problem.GetProperty("limit").GetString());
        Assert.Equal(limit, problem.GetProperty("maximum").GetInt64());
        Assert.Contains("Limits:MaxRequestBodyBytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static async Task AssertHistoryAsync(GatewayApp app, string threadId)
    {
        using var fresh = app.CreateClient();
        var messages = (await fresh.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["kept"], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    /// <summary>A stream that does not say its length, so HttpClient sends it chunked.</summary>
    private sealed class UnknownLengthStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 1024));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
