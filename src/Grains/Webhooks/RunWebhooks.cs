using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Webhooks;

/// <summary>Settings of run webhooks (section <c>Webhooks</c>).</summary>
public sealed class WebhookOptions
{
    public const string SectionName = "Webhooks";

    /// <summary>
    /// The key every delivery is signed with (HMAC-SHA256, header <see cref="RunWebhooks.SignatureHeader"/>). Without
    /// one, sends that ask for a webhook are refused: an unsigned callback could be forged by anyone.
    /// </summary>
    public string? SigningSecret { get; set; }

    /// <summary>How many times one delivery is tried in all.</summary>
    public int MaxAttempts { get; set; } = 4;

    /// <summary>The pause before the first retry; each next one doubles it.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one attempt may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>What a webhook receives when its run ends: the run's final state and its last assistant message.</summary>
/// <param name="Type">Always <c>run.ended</c>.</param>
/// <param name="ThreadId">The run's thread.</param>
/// <param name="Run">The run as it ended (status, error, usage, times).</param>
/// <param name="Message">The last assistant message it stored; null for none (or when another activation ended it).</param>
public sealed record RunWebhookPayload(string Type, string ThreadId, RunRecord Run, ThreadMessage? Message);

/// <summary>
/// Posts a run's final state to the webhook its send named, when the run ends: in the background, with retries on
/// network errors, timeouts, 408, 429 and 5xx, signed. A failure is logged and never touches the run. Deliveries wait
/// in this silo's memory: at least once while the silo lives; one that is pending when the silo dies is lost.
/// </summary>
/// <remarks>
/// The signature header is <c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256 of "t.body"&gt;</c> with
/// <see cref="WebhookOptions.SigningSecret"/>: a receiver recomputes it over the raw body and rejects old timestamps.
/// Every attempt of one delivery carries the same <see cref="DeliveryHeader"/>, so a receiver can drop repeats.
/// </remarks>
public sealed partial class RunWebhooks(
    IHttpClientFactory clients, IOptions<WebhookOptions> options, TimeProvider time, ILogger<RunWebhooks> logger) : BackgroundService
{
    /// <summary>The named <see cref="HttpClient"/> deliveries use.</summary>
    public const string ClientName = "conversations-webhooks";

    public const string SignatureHeader = "Conversations-Signature";

    public const string DeliveryHeader = "Conversations-Delivery";

    private readonly Channel<RunWebhookPayload> _pending = Channel.CreateUnbounded<RunWebhookPayload>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>True when deliveries can be signed, so sends may ask for a webhook.</summary>
    public bool Enabled => !string.IsNullOrEmpty(options.Value.SigningSecret);

    /// <summary>Queues the delivery of an ended run to its webhook; returns at once.</summary>
    public void Enqueue(string threadId, RunRecord run, ThreadMessage? message)
    {
        if (run.Webhook is not null && Enabled)
        {
            _pending.Writer.TryWrite(new RunWebhookPayload("run.ended", threadId, run, message));
        }
    }

    /// <summary>The signature header's value for <paramref name="body"/> at <paramref name="timestamp"/>.</summary>
    public static string Sign(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(prefix.Length));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
        return $"t={timestamp.ToString(CultureInfo.InvariantCulture)},v1={Convert.ToHexStringLower(mac)}";
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var deliveries = new List<Task>();
        try
        {
            await foreach (var payload in _pending.Reader.ReadAllAsync(stoppingToken))
            {
                deliveries.RemoveAll(d => d.IsCompleted);
                deliveries.Add(DeliverAsync(payload, stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(deliveries).ConfigureAwait(false);
    }

    private async Task DeliverAsync(RunWebhookPayload payload, CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var url = new Uri(payload.Run.Webhook!);
        var body = JsonSerializer.SerializeToUtf8Bytes(payload, ContractJson.Options);
        var delivery = $"whd_{Guid.NewGuid():N}";
        var delay = settings.FirstRetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            string failure;
            try
            {
                using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                attemptTimeout.CancelAfter(settings.Timeout);
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                request.Headers.Add(SignatureHeader, Sign(settings.SigningSecret!, time.GetUtcNow().ToUnixTimeSeconds(), body));
                request.Headers.Add(DeliveryHeader, delivery);
                using var response = await clients.CreateClient(ClientName).SendAsync(request, attemptTimeout.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    LogDelivered(logger, payload.Run.Id, payload.ThreadId, url.Host, attempt);
                    return;
                }

                failure = $"HTTP {(int)response.StatusCode}";
                if (!Retryable(response.StatusCode))
                {
                    LogAbandoned(logger, payload.Run.Id, payload.ThreadId, url.Host, attempt, failure);
                    return;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                LogAbandoned(logger, payload.Run.Id, payload.ThreadId, url.Host, attempt, "the silo stopped");
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
                failure = ex is OperationCanceledException ? $"no answer within {settings.Timeout}" : ex.Message;
            }

            if (attempt >= settings.MaxAttempts)
            {
                LogAbandoned(logger, payload.Run.Id, payload.ThreadId, url.Host, attempt, failure);
                return;
            }

            LogRetrying(logger, payload.Run.Id, payload.ThreadId, url.Host, attempt, failure);
            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay *= 2;
        }
    }

    private static bool Retryable(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    [LoggerMessage(2001, LogLevel.Information, "Webhook of run {RunId} on thread {ThreadId} delivered to {Host} (attempt {Attempt})")]
    private static partial void LogDelivered(ILogger logger, string runId, string threadId, string host, int attempt);

    [LoggerMessage(2002, LogLevel.Warning, "Webhook of run {RunId} on thread {ThreadId} to {Host} failed (attempt {Attempt}: {Failure}); retrying")]
    private static partial void LogRetrying(ILogger logger, string runId, string threadId, string host, int attempt, string failure);

    [LoggerMessage(2003, LogLevel.Error, "Webhook of run {RunId} on thread {ThreadId} to {Host} given up after attempt {Attempt}: {Failure}")]
    private static partial void LogAbandoned(ILogger logger, string runId, string threadId, string host, int attempt, string failure);
}
