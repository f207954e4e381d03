using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conversations.Bench.FakeModel;

/// <summary>
/// A fast OpenAI-compatible model on loopback (<c>POST /v1/chat/completions</c>, streaming or not; <c>GET
/// /v1/models</c>), run as a child process of the bench. What it answers is set by the last user message:
/// <see cref="Prompt"/> writes <c>tokens=N interval_ms=X</c> there; each token is <c>~{ticks}</c>, the monotonic clock
/// (<see cref="Stopwatch.GetTimestamp"/>, the same clock in every process of the machine) when it was written, so a
/// reader anywhere downstream knows how old each piece of text is.
/// </summary>
/// <remarks>The SSE bytes are written by hand from prebuilt pieces, flushed per chunk, to cost as little as possible.</remarks>
public static partial class FakeModelServer
{
    public const string Command = "fake";

    private static readonly byte[] ChunkStart = Encoding.UTF8.GetBytes(
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    private static readonly byte[] ChunkEnd = "\"},\"finish_reason\":null}]}\n\n"u8.ToArray();
    private static readonly byte[] FirstChunkStart = Encoding.UTF8.GetBytes(
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"");
    private static readonly byte[] Stop = Encoding.UTF8.GetBytes(
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    /// <summary>The user message that asks the fake for <paramref name="tokens"/> tokens, one every <paramref name="intervalMs"/> ms (0: as fast as it can).</summary>
    public static string Prompt(int tokens, double intervalMs) =>
        string.Create(CultureInfo.InvariantCulture, $"bench tokens={tokens} interval_ms={intervalMs}");

    /// <summary>The token's text: its write time on the monotonic clock.</summary>
    public static string Token(long timestamp) => string.Create(CultureInfo.InvariantCulture, $"~{timestamp}");

    /// <summary>The write time of the first token in <paramref name="text"/> (a delta may hold several), or null.</summary>
    public static long? FirstTokenTime(string text)
    {
        var start = text.IndexOf('~', StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        var end = start + 1;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        return long.TryParse(text.AsSpan(start + 1, end - start - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    /// <summary>How many tokens <paramref name="text"/> holds.</summary>
    public static int CountTokens(string text) => text.Count(c => c == '~');

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], EnvironmentName = Environments.Production });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Limits.MaxConcurrentConnections = null;
        });
        var app = builder.Build();
        app.MapPost("/v1/chat/completions", HandleAsync);
        app.MapGet("/v1/models", () => TypedResults.Text("{\"object\":\"list\",\"data\":[{\"id\":\"fake-model\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"bench\"}]}", "application/json"));
        await app.StartAsync();
        Console.WriteLine($"{ChildProcess.ListeningPrefix}{app.Urls.Single()}");
        var stop = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.TrySetResult();
        };
        // The parent closes our stdin when it is done with us.
        _ = Task.Run(async () =>
        {
            await Console.In.ReadToEndAsync();
            stop.TrySetResult();
        });
        await stop.Task;
        await app.StopAsync();
        return 0;
    }

    private static async Task HandleAsync(HttpContext context)
    {
        var aborted = context.RequestAborted;
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: aborted);
        var stream = body.RootElement.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        var includeUsage = body.RootElement.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
            && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        var (tokens, intervalMs) = ReadPrompt(body.RootElement);
        try
        {
            if (stream)
            {
                await StreamAsync(context, tokens, intervalMs, includeUsage, aborted);
            }
            else
            {
                var text = new StringBuilder();
                for (var i = 0; i < tokens; i++)
                {
                    text.Append(Token(Stopwatch.GetTimestamp()));
                }

                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(
                    $"{{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"fake-model\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":{tokens},\"total_tokens\":{tokens + 1}}}}}",
                    aborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && aborted.IsCancellationRequested)
        {
            // The reader went away.
        }
    }

    private static async Task StreamAsync(HttpContext context, int tokens, double intervalMs, bool includeUsage, CancellationToken aborted)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var writer = context.Response.BodyWriter;
        var start = Stopwatch.GetTimestamp();
        var digits = new byte[24];
        for (var i = 0; i < tokens; i++)
        {
            if (intervalMs > 0 && i > 0)
            {
                var due = start + (long)(i * intervalMs * Stopwatch.Frequency / 1000.0);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, aborted);
                }
            }

            writer.Write(i == 0 ? FirstChunkStart : ChunkStart);
            digits[0] = (byte)'~';
            Stopwatch.GetTimestamp().TryFormat(digits.AsSpan(1), out var written, provider: CultureInfo.InvariantCulture);
            writer.Write(digits.AsSpan(0, written + 1));
            writer.Write(ChunkEnd);
            await writer.FlushAsync(aborted);
        }

        writer.Write(Stop);
        if (includeUsage)
        {
            writer.Write(Encoding.UTF8.GetBytes(
                $"data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"fake-model\",\"choices\":[],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":{tokens},\"total_tokens\":{tokens + 1}}}}}\n\n"));
        }

        writer.Write(Done);
        await writer.FlushAsync(aborted);
    }

    private static (int Tokens, double IntervalMs) ReadPrompt(JsonElement body)
    {
        var prompt = "";
        if (body.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                if (message.TryGetProperty("role", out var role) && role.ValueEquals("user")
                    && message.TryGetProperty("content", out var content))
                {
                    prompt = content.ValueKind switch
                    {
                        JsonValueKind.String => content.GetString() ?? "",
                        JsonValueKind.Array => string.Concat(content.EnumerateArray()
                            .Select(part => part.TryGetProperty("text", out var text) ? text.GetString() : "")),
                        _ => prompt,
                    };
                }
            }
        }

        var tokens = TokensSetting().Match(prompt) is { Success: true } t ? int.Parse(t.Groups[1].Value, CultureInfo.InvariantCulture) : 8;
        var interval = IntervalSetting().Match(prompt) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return (tokens, interval);
    }

    [GeneratedRegex(@"tokens=(\d+)")]
    private static partial Regex TokensSetting();

    [GeneratedRegex(@"interval_ms=([0-9.]+)")]
    private static partial Regex IntervalSetting();
}
