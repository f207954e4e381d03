using System.Net;
using System.Text.Json;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// A gateway's <see cref="IGrainFactory"/> in cluster mode: thread grain references whose calls are HTTP requests
/// to the silo that owns the thread (or the one hashing picks when nobody does), following 421 redirects.
/// </summary>
/// <remarks>
/// <c>SendMessageAsync</c> goes through <c>sendOverride</c> when one is given (the run queue), else straight to the
/// silo's <c>send</c> call.
/// </remarks>
public sealed class RemoteGrainFactory(
    SiloLocator locator,
    SiloHttpClient http,
    ILogger<RemoteGrainFactory> logger,
    Func<string, SendMessage, CancellationToken, Task<SendMessageResult>>? sendOverride = null) : IGrainFactory
{
    private readonly SiloLocator _locator = locator ?? throw new ArgumentNullException(nameof(locator));
    private readonly SiloHttpClient _http = http ?? throw new ArgumentNullException(nameof(http));
    private readonly ILogger<RemoteGrainFactory> _logger = logger ?? throw new ArgumentNullException(nameof(logger));

    /// <inheritdoc />
    public TGrain GetGrain<TGrain>(string key) where TGrain : IGrainWithStringKey
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return typeof(TGrain) == typeof(IThreadGrain)
            ? (TGrain)(object)new RemoteThreadGrain(this, key, sendOverride)
            : throw new NotSupportedException($"No remote grain reference exists for {typeof(TGrain).Name}.");
    }

    /// <summary>
    /// One grain call: POST to the located silo; a 421 is followed to the owner it names (at most
    /// <see cref="ClusterClientOptions.MaxRedirects"/> times); a silo that cannot be connected to makes the thread be
    /// located once more (the cached silo list is dropped), and a second failure is a
    /// <see cref="ThreadNodeUnavailableException"/>. A failure after the request may have been sent is not retried
    /// (the call may have run) and is a <see cref="ThreadNodeUnavailableException"/> too.
    /// </summary>
    internal async Task<TResult> CallAsync<TArgument, TResult>(string threadId, string method, TArgument argument, CancellationToken cancellationToken)
    {
        var options = _http.Options;
        var route = await _locator.LocateAsync(threadId, cancellationToken).ConfigureAwait(false);
        var (siloId, address) = (route.Silo.SiloId, route.Silo.Address);
        var relocated = false;
        var redirects = 0;
        while (true)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.CallTimeout);
            try
            {
                using var content = JsonContent.Create(argument, options: ContractJson.Options);
                using var response = await _http.SendAsync(HttpMethod.Post, address, ClusterProtocol.CallPath(threadId, method), content, HttpCompletionOption.ResponseContentRead, timeout.Token)
                    .ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.MisdirectedRequest)
                {
                    var redirect = await ReadRedirectAsync(response, threadId, method, address, timeout.Token).ConfigureAwait(false);
                    if (++redirects > options.MaxRedirects)
                    {
                        throw new SiloCallException(threadId, method, address, response.StatusCode,
                            $"redirected more than {options.MaxRedirects} times; last to silo '{redirect.OwnerSiloId}' at {redirect.OwnerAddress}");
                    }

                    Log.CallRedirected(_logger, threadId, method, siloId, redirect.OwnerSiloId);
                    (siloId, address) = (redirect.OwnerSiloId, redirect.OwnerAddress);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw new SiloCallException(threadId, method, address, response.StatusCode, await DescribeAsync(response, timeout.Token).ConfigureAwait(false));
                }

                var json = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                return JsonSerializer.Deserialize<TResult>(json, ContractJson.Options)!;
            }
            catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError && !cancellationToken.IsCancellationRequested)
            {
                // Nothing was sent: trying elsewhere cannot run the call twice.
                if (relocated)
                {
                    throw new ThreadNodeUnavailableException(threadId, siloId, $"silo at {address} cannot be reached", e);
                }

                Log.CallConnectFailed(_logger, e, threadId, method, siloId, address);
                relocated = true;
                redirects = 0;
                _locator.InvalidateActiveSilos();
                route = await _locator.LocateAsync(threadId, cancellationToken).ConfigureAwait(false);
                (siloId, address) = (route.Silo.SiloId, route.Silo.Address);
            }
            catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ThreadNodeUnavailableException(threadId, siloId, $"the call '{method}' to silo at {address} broke off ({e.HttpRequestError}); it may or may not have run", e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ThreadNodeUnavailableException(threadId, siloId, $"silo at {address} did not answer '{method}' within {options.CallTimeout}", e);
            }
        }
    }

    private static async Task<OwnerRedirect> ReadRedirectAsync(HttpResponseMessage response, string threadId, string method, string address, CancellationToken cancellationToken)
    {
        try
        {
            var redirect = await response.Content.ReadFromJsonAsync<OwnerRedirect>(ContractJson.Options, cancellationToken).ConfigureAwait(false);
            if (redirect is { OwnerSiloId.Length: > 0, OwnerAddress.Length: > 0 })
            {
                return redirect;
            }
        }
        catch (JsonException)
        {
            // Reported below.
        }

        throw new SiloCallException(threadId, method, address, response.StatusCode, "a 421 without {\"ownerSiloId\",\"ownerAddress\"}");
    }

    internal static async Task<string> DescribeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return body.Length == 0 ? response.ReasonPhrase ?? "no detail" : body.Length > 500 ? body[..500] + "…" : body;
    }
}

/// <summary>A reference to a thread grain in another process: each method is one call to the thread's silo.</summary>
public sealed class RemoteThreadGrain : IThreadGrain
{
    private readonly RemoteGrainFactory _factory;
    private readonly Func<string, SendMessage, CancellationToken, Task<SendMessageResult>>? _sendOverride;

    internal RemoteThreadGrain(RemoteGrainFactory factory, string threadId, Func<string, SendMessage, CancellationToken, Task<SendMessageResult>>? sendOverride)
    {
        _factory = factory;
        ThreadId = threadId;
        _sendOverride = sendOverride;
    }

    /// <summary>The thread this reference calls.</summary>
    public string ThreadId { get; }

    /// <inheritdoc />
    public Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<CreateThread, ThreadSnapshot?>(ThreadId, ClusterProtocol.Methods.Create, command, cancellationToken);

    /// <inheritdoc />
    public Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default) =>
        _factory.CallAsync<object, ThreadSnapshot?>(ThreadId, ClusterProtocol.Methods.Get, new { }, cancellationToken);

    /// <inheritdoc />
    public Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<MessagePageRequest, MessagePage?>(ThreadId, ClusterProtocol.Methods.Messages, request, cancellationToken);

    /// <inheritdoc />
    public Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<AppendMessagesCall, AppendMessagesResult>(ThreadId, ClusterProtocol.Methods.Append, new AppendMessagesCall(messages), cancellationToken);

    /// <inheritdoc />
    /// <remarks>Through the factory's send override (the run queue) when it has one; else the silo's <c>send</c> call.</remarks>
    public Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default) =>
        _sendOverride is { } send ? send(ThreadId, command, cancellationToken) : SendDirectAsync(command, cancellationToken);

    /// <summary>The silo's <c>send</c> call, bypassing any override (for the component the override hands sends to).</summary>
    public Task<SendMessageResult> SendDirectAsync(SendMessage command, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<SendMessage, SendMessageResult>(ThreadId, ClusterProtocol.Methods.Send, command, cancellationToken);

    /// <inheritdoc />
    public Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<RunIdCall, CancelRunResult>(ThreadId, ClusterProtocol.Methods.Cancel, new RunIdCall(runId), cancellationToken);

    /// <inheritdoc />
    public Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        _factory.CallAsync<RunIdCall, RunRecord?>(ThreadId, ClusterProtocol.Methods.Run, new RunIdCall(runId), cancellationToken);
}
