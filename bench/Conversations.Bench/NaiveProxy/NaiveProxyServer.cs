using System.Buffers;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conversations.Bench.NaiveProxy;

/// <summary>
/// The baseline: a request-bound pass-through proxy in the same stack (ASP.NET Core, HttpClient), the shape of seeds
/// 001/003 — <c>POST /completion {"message", "stream": true}</c> calls the model and relays each text delta as
/// <c>data: {"content": "…", "done": false}</c>, then <c>{"content": "", "done": true}</c>. No grain, no history, no
/// event log: when the request ends, nothing of it is left. Run as a child process of the bench:
/// <c>proxy {model base URL}</c>.
/// </summary>
public static class NaiveProxyServer
{
    public const string Command = "proxy";

    private static readonly byte[] DoneChunk = "data: {\"content\":\"\",\"done\":true}\n\n"u8.ToArray();

    public static async Task<int> RunAsync(string[] args)
    {
        var upstream = new Uri(new Uri(args[0].TrimEnd('/') + "/"), "chat/completions");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], EnvironmentName = Environments.Production });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Limits.MaxConcurrentConnections = null;
        });
        var app = builder.Build();
        using var model = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = int.MaxValue })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        app.MapPost("/completion", (HttpContext context) => CompleteAsync(context, model, upstream));
        await app.StartAsync();
        Console.WriteLine($"{ChildProcess.ListeningPrefix}{app.Urls.Single()}");
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }

    private static async Task CompleteAsync(HttpContext context, HttpClient model, Uri upstream)
    {
        var aborted = context.RequestAborted;
        using var request = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: aborted);
        var message = request.RootElement.GetProperty("message").GetString() ?? "";
        var call = JsonSerializer.SerializeToUtf8Bytes(new
        {
            model = "fake-model",
            stream = true,
            messages = new[] { new { role = "user", content = message } },
        });
        using var upstreamRequest = new HttpRequestMessage(HttpMethod.Post, upstream) { Content = new ByteArrayContent(call) };
        upstreamRequest.Content.Headers.ContentType = new("application/json");
        using var response = await model.SendAsync(upstreamRequest, HttpCompletionOption.ResponseHeadersRead, aborted);
        if (!response.IsSuccessStatusCode)
        {
            context.Response.StatusCode = 502;
            return;
        }

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var writer = context.Response.BodyWriter;
        await using var body = await response.Content.ReadAsStreamAsync(aborted);
        await foreach (var item in SseParser.Create(body).EnumerateAsync(aborted))
        {
            if (item.Data == "[DONE]")
            {
                break;
            }

            using var chunk = JsonDocument.Parse(item.Data);
            if (chunk.RootElement.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content)
                && content.GetString() is { Length: > 0 } text)
            {
                var json = JsonSerializer.Serialize(new { content = text, done = false });
                writer.Write("data: "u8);
                writer.Write(Encoding.UTF8.GetBytes(json));
                writer.Write("\n\n"u8);
                await writer.FlushAsync(aborted);
            }
        }

        writer.Write(DoneChunk);
        await writer.FlushAsync(aborted);
    }
}
