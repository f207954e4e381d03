using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Fakes;

/// <summary>
/// A real OpenAI-compatible HTTP server (Kestrel on 127.0.0.1, a free port) that answers
/// <c>POST /v1/chat/completions</c> from a per-test script and <c>GET /v1/models</c> from <see cref="Models"/>. Azure
/// OpenAI's routes for chat completions answer the same way: <c>POST /openai/deployments/{deployment}/chat/completions</c>
/// (the resource URL style, with <c>?api-version=</c>) and <c>POST /openai/v1/chat/completions</c> (the v1 style).
/// </summary>
/// <remarks>
/// <para>Each chat completions request takes the next <see cref="ScriptedResponse"/> from a FIFO queue; when the queue
/// is empty it answers 500 with a message saying so, so an unexpected model call fails the test loudly. Every chat
/// completions request is recorded (<see cref="Requests"/>) with its parsed JSON body.</para>
/// <para>Point the OpenAI SDK (<c>OpenAIClientOptions.Endpoint</c>) or <c>OPENAI_BASE_URL</c> at <see cref="BaseUrl"/>.</para>
/// <para>The SSE framing is written by hand on purpose: the fake has to control the bytes and their timing exactly
/// (flush per chunk, abort after chunk n, hold the stream open), which a formatter would hide.</para>
/// </remarks>
/// <example>
/// <code>
/// await using var server = await FakeOpenAiServer.StartAsync(ct);
/// server.Enqueue(
///     ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "get_weather", "{\"city\":", "\"Paris\"}")),
///     ScriptedResponse.Text("It is ", "sunny.").WithUsage(42, 7));
/// // … run the code under test against server.BaseUrl …
/// var second = await server.WaitForRequestAsync(2, ct);
/// Assert.Equal("tool", second.Messages[^1]!["role"]!.GetValue&lt;string&gt;());
/// </code>
/// </example>
public sealed class FakeOpenAiServer : IAsyncDisposable
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly TimeSpan BreakGrace = TimeSpan.FromMilliseconds(200);

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ScriptedResponse> _script = new();
    private readonly Lock _gate = new();
    private readonly List<RecordedRequest> _requests = [];
    private readonly List<(int Count, TaskCompletionSource<RecordedRequest> Waiter)> _waiters = [];
    private readonly CancellationTokenSource _stopping = new();

    private FakeOpenAiServer(WebApplication app)
    {
        _app = app;
    }

    /// <summary>
    /// The API root with the version segment and a trailing slash, <c>http://127.0.0.1:{port}/v1/</c>; the SDK appends
    /// <c>chat/completions</c>.
    /// </summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The model ids <c>GET /v1/models</c> lists.</summary>
    public IReadOnlyList<string> Models { get; set; } = ["fake-model"];

    /// <summary>The chat completions requests received so far, in arrival order (a snapshot).</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Scripted responses not yet taken by a request.</summary>
    public int PendingResponses => _script.Count;

    /// <summary>Starts a server on a free loopback port.</summary>
    public static async Task<FakeOpenAiServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(2));

        var app = builder.Build();
        var server = new FakeOpenAiServer(app);
        app.MapPost("/v1/chat/completions", server.HandleChatCompletionsAsync);
        app.MapPost("/openai/deployments/{deployment}/chat/completions", server.HandleChatCompletionsAsync);
        app.MapPost("/openai/v1/chat/completions", server.HandleChatCompletionsAsync);
        app.MapGet("/v1/models", server.HandleModels);

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Urls.Single();
        server.BaseUrl = new Uri(new Uri(address), "/v1/");
        return server;
    }

    /// <summary>Queues answers for the next requests, in order.</summary>
    public FakeOpenAiServer Enqueue(params ScriptedResponse[] responses)
    {
        foreach (var response in responses)
        {
            _script.Enqueue(response);
        }

        return this;
    }

    /// <summary>Completes when the <paramref name="count"/>-th chat completions request (1-based) has arrived, with it.</summary>
    public Task<RecordedRequest> WaitForRequestAsync(int count = 1, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_gate)
        {
            if (_requests.Count >= count)
            {
                return Task.FromResult(_requests[count - 1]);
            }

            var waiter = new TaskCompletionSource<RecordedRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, waiter));
            return waiter.Task.WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private IResult HandleModels() => TypedResults.Json(new JsonObject
    {
        ["object"] = "list",
        ["data"] = new JsonArray([.. Models.Select(id => (JsonNode)new JsonObject
        {
            ["id"] = id,
            ["object"] = "model",
            ["created"] = 1_700_000_000,
            ["owned_by"] = "fake",
        })]),
    });

    private async Task HandleChatCompletionsAsync(HttpContext context)
    {
        var aborted = context.RequestAborted;
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: aborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            body = null;
        }

        var request = Record(context, body);
        try
        {
            if (body is null)
            {
                await WriteErrorAsync(context, 400, "FakeOpenAiServer: the request body is not JSON.").ConfigureAwait(false);
            }
            else if (!_script.TryDequeue(out var response))
            {
                await WriteErrorAsync(
                    context,
                    500,
                    $"FakeOpenAiServer: no scripted response left for request #{request.Number}. Enqueue one per expected model call.")
                    .ConfigureAwait(false);
            }
            else if (response.IsError)
            {
                context.Response.StatusCode = response.ErrorStatus!.Value;
                await context.Response.WriteAsJsonAsync(response.ErrorBody, aborted).ConfigureAwait(false);
            }
            else if (request.Stream)
            {
                await StreamAsync(context, request, response).ConfigureAwait(false);
            }
            else if (response.RawChunks is not null)
            {
                await WriteErrorAsync(context, 500, "FakeOpenAiServer: a Chunks(...) script only answers stream=true requests.")
                    .ConfigureAwait(false);
            }
            else
            {
                await Task.Delay(response.Delay, aborted).ConfigureAwait(false);
                await context.Response.WriteAsJsonAsync(response.RenderCompletion(CompletionId(request), request.Model ?? "fake-model"), aborted)
                    .ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested || _stopping.IsCancellationRequested)
        {
            // The client went away or the server is stopping: nothing left to answer.
        }
        catch (IOException) when (aborted.IsCancellationRequested)
        {
        }
        finally
        {
            request.Complete(aborted.IsCancellationRequested);
        }
    }

    private async Task StreamAsync(HttpContext context, RecordedRequest request, ScriptedResponse response)
    {
        var aborted = context.RequestAborted;
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.StartAsync(aborted).ConfigureAwait(false);

        var chunks = response.RenderChunks(CompletionId(request), request.Model ?? "fake-model", request.IncludeUsage);
        var body = context.Response.Body;
        for (var sent = 0; ; sent++)
        {
            if (response.BreakAfterChunks == sent)
            {
                // Abort resets the connection, and a TCP reset makes the client's kernel drop bytes it has received but
                // the client has not read yet; the pause lets the client read what was sent before the reset.
                await Task.Delay(BreakGrace, aborted).ConfigureAwait(false);
                context.Abort();
                return;
            }

            if (response.HangAfterChunks == sent)
            {
                using var hang = CancellationTokenSource.CreateLinkedTokenSource(aborted, _stopping.Token);
                await Task.Delay(Timeout.Infinite, hang.Token).ConfigureAwait(false);
            }

            if (response.HoldAfterChunks == sent && response.Release is { } release)
            {
                using var hold = CancellationTokenSource.CreateLinkedTokenSource(aborted, _stopping.Token);
                await release.WaitAsync(hold.Token).ConfigureAwait(false);
            }

            if (sent == chunks.Count)
            {
                break;
            }

            if (response.Delay > TimeSpan.Zero)
            {
                await Task.Delay(response.Delay, aborted).ConfigureAwait(false);
            }

            await body.WriteAsync(DataPrefix, aborted).ConfigureAwait(false);
            await body.WriteAsync(Encoding.UTF8.GetBytes(chunks[sent]), aborted).ConfigureAwait(false);
            await body.WriteAsync(EventEnd, aborted).ConfigureAwait(false);
            await body.FlushAsync(aborted).ConfigureAwait(false);
        }

        await body.WriteAsync(Done, aborted).ConfigureAwait(false);
        await body.FlushAsync(aborted).ConfigureAwait(false);
    }

    private static string CompletionId(RecordedRequest request) => $"chatcmpl-fake-{request.Number}";

    private static Task WriteErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(
            ScriptedResponse.Error(status, message).ErrorBody,
            context.RequestAborted);
    }

    private RecordedRequest Record(HttpContext context, JsonNode? body)
    {
        lock (_gate)
        {
            var request = new RecordedRequest(
                _requests.Count + 1,
                context.Request.Path,
                context.Request.Headers.Authorization.ToString() is { Length: > 0 } authorization ? authorization : null,
                body)
            {
                Query = context.Request.QueryString.Value ?? "",
                ApiKey = context.Request.Headers["api-key"].ToString() is { Length: > 0 } apiKey ? apiKey : null,
            };
            _requests.Add(request);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Count <= _requests.Count)
                {
                    _waiters[i].Waiter.TrySetResult(_requests[_waiters[i].Count - 1]);
                    _waiters.RemoveAt(i);
                }
            }

            return request;
        }
    }
}

/// <summary>A chat completions request as <see cref="FakeOpenAiServer"/> received it.</summary>
public sealed class RecordedRequest
{
    private readonly TaskCompletionSource<bool> _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal RecordedRequest(int number, string path, string? authorization, JsonNode? body)
    {
        Number = number;
        Path = path;
        Authorization = authorization;
        Body = body;
    }

    /// <summary>1-based arrival number.</summary>
    public int Number { get; }

    /// <summary>The request path, <c>/v1/chat/completions</c> (or one of Azure's routes).</summary>
    public string Path { get; }

    /// <summary>The query string with its <c>?</c>, e.g. <c>?api-version=2024-10-21</c>; empty when there is none.</summary>
    public string Query { get; init; } = "";

    /// <summary>The <c>Authorization</c> header as sent, e.g. <c>Bearer sk-…</c>; null when absent.</summary>
    public string? Authorization { get; }

    /// <summary>The <c>api-key</c> header as sent (Azure OpenAI's key header); null when absent.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The parsed JSON body; null when it was not JSON.</summary>
    public JsonNode? Body { get; }

    public string? Model => Body?["model"]?.GetValue<string>();

    public bool Stream => Body?["stream"]?.GetValue<bool>() == true;

    /// <summary><c>stream_options.include_usage</c>.</summary>
    public bool IncludeUsage => Body?["stream_options"]?["include_usage"]?.GetValue<bool>() == true;

    /// <summary>The <c>messages</c> array (empty when absent).</summary>
    public JsonArray Messages => Body?["messages"] as JsonArray ?? [];

    /// <summary>The <c>tools</c> array (empty when absent).</summary>
    public JsonArray Tools => Body?["tools"] as JsonArray ?? [];

    /// <summary>
    /// Completes when the server has finished with the request: true when the connection was aborted first (the client
    /// went away, or the script broke it off), false when the response was written out.
    /// </summary>
    public Task<bool> Aborted => _completed.Task;

    internal void Complete(bool aborted) => _completed.TrySetResult(aborted);

    public override string ToString() => $"#{Number} {Path} {Body?.ToJsonString()}";
}
