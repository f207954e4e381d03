using System.Net;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Silo.Streams;

namespace Conversations.Silo.Cluster.Client;

/// <summary>
/// A gateway's <see cref="IThreadEventSource"/> in cluster mode. Per watched thread there is one upstream per
/// process — an SSE request to the silo that owns the thread — shared by every local subscriber and closed when
/// the last one leaves. Each subscriber gets its own replay-then-live stream as in
/// <see cref="Streams.InProcess.InProcessStreamHub"/>: older events from the durable log, recent ones from an in-memory
/// tail, then live ones through a bounded buffer, with no gap and no duplicate.
/// </summary>
/// <remarks>
/// The upstream loop: find the owner from the lease; stream from it after the last delivered sequence (following
/// 421s); when the stream ends or breaks, look again and resume. When nobody owns the thread (no lease, a 404, or a
/// holder that is not active), deliver what the log has and wait for a <c>thread_activated</c> notification or the
/// poll interval. Whatever the source, events are delivered strictly in sequence: an event beyond the next
/// sequence is preceded by the missing ones from the log, and one already delivered is dropped.
/// </remarks>
public sealed class ClusterThreadEventSource : IThreadEventSource, IAsyncDisposable
{
    private readonly Dictionary<string, ThreadFeed> _feeds = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly SiloLocator _locator;
    private readonly SiloHttpClient _http;
    private readonly IEventLog _log;
    private readonly ThreadActivationListener _activations;
    private readonly ClusterClientOptions _options;
    private readonly ILogger<ClusterThreadEventSource> _logger;
    private bool _disposed;

    public ClusterThreadEventSource(
        SiloLocator locator, SiloHttpClient http, IEventLog log, ThreadActivationListener activations, ILogger<ClusterThreadEventSource> logger)
    {
        _locator = locator ?? throw new ArgumentNullException(nameof(locator));
        _http = http ?? throw new ArgumentNullException(nameof(http));
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _activations = activations ?? throw new ArgumentNullException(nameof(activations));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _options = http.Options;
    }

    /// <summary>How many threads have an upstream (a feed) in this process.</summary>
    public int UpstreamCount
    {
        get
        {
            lock (_gate)
            {
                return _feeds.Count;
            }
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ThreadEvent> SubscribeAsync(
        string threadId, long afterSequence, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        var feed = await AcquireAsync(threadId, cancellationToken).ConfigureAwait(false);
        try
        {
            var live = feed.Subscribe(afterSequence, out var snapshot, out var tailStart);
            try
            {
                await foreach (var next in ReplayThenLive.EnumerateAsync(_log, threadId, afterSequence, tailStart, snapshot, live.Reader, cancellationToken).ConfigureAwait(false))
                {
                    yield return next;
                }
            }
            finally
            {
                feed.Unsubscribe(live);
            }
        }
        finally
        {
            Release(feed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<ThreadFeed> feeds;
        lock (_gate)
        {
            _disposed = true;
            feeds = [.. _feeds.Values];
            _feeds.Clear();
        }

        foreach (var feed in feeds)
        {
            await feed.StopAsync().ConfigureAwait(false);
        }
    }

    private async Task<ThreadFeed> AcquireAsync(string threadId, CancellationToken cancellationToken)
    {
        ThreadFeed feed;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_feeds.TryGetValue(threadId, out feed!))
            {
                feed = new ThreadFeed(threadId, _options, _activations.Watch(threadId));
                feed.Ready = StartAsync(feed);
                _feeds.Add(threadId, feed);
            }

            feed.References++;
        }

        try
        {
            await feed.Ready.WaitAsync(cancellationToken).ConfigureAwait(false);
            return feed;
        }
        catch
        {
            lock (_gate)
            {
                // A feed that could not start is not handed to the next subscriber.
                if (feed.Ready.IsFaulted && _feeds.TryGetValue(threadId, out var current) && ReferenceEquals(current, feed))
                {
                    _feeds.Remove(threadId);
                }
            }

            Release(feed);
            throw;
        }
    }

    private async Task StartAsync(ThreadFeed feed)
    {
        // The upstream starts at the end of the log: subscribers read older events from the log themselves, so a
        // silo never replays history to a gateway.
        feed.Initialize(await _log.GetLastSequenceAsync(feed.ThreadId, CancellationToken.None).ConfigureAwait(false));
        feed.Loop = Task.Run(() => RunUpstreamAsync(feed, feed.Stopping.Token));
    }

    private void Release(ThreadFeed feed)
    {
        var stop = false;
        lock (_gate)
        {
            if (--feed.References == 0)
            {
                if (_feeds.TryGetValue(feed.ThreadId, out var current) && ReferenceEquals(current, feed))
                {
                    _feeds.Remove(feed.ThreadId);
                }

                stop = true;
            }
        }

        if (stop)
        {
            _ = feed.StopAsync();
        }
    }

    private async Task RunUpstreamAsync(ThreadFeed feed, CancellationToken cancellationToken)
    {
        var retryDelay = _options.RetryDelay;
        while (!cancellationToken.IsCancellationRequested)
        {
            // Read before the lease: an activation notified after this point ends the idle wait below.
            var seen = feed.Signal.Version;
            string? address = null;
            try
            {
                var owner = await _locator.FindOwnerAsync(feed.ThreadId, cancellationToken).ConfigureAwait(false);
                var outcome = UpstreamOutcome.NotActive;
                if (owner.Silo is { } silo)
                {
                    address = silo.Address;
                    outcome = await StreamFromOwnerAsync(feed, silo.Address, cancellationToken).ConfigureAwait(false);
                }

                if (outcome == UpstreamOutcome.NotActive)
                {
                    await CatchUpFromLogAsync(feed, long.MaxValue, cancellationToken).ConfigureAwait(false);
                    await feed.Signal.WaitAsync(seen, _options.IdlePollInterval, cancellationToken).ConfigureAwait(false);
                    retryDelay = _options.RetryDelay;
                    continue;
                }

                if (outcome == UpstreamOutcome.Delivered)
                {
                    retryDelay = _options.RetryDelay;
                    continue;
                }

                // Ended without an event, or too many redirects: look again, but not in a tight loop.
                await Task.Delay(retryDelay, cancellationToken).ConfigureAwait(false);
                retryDelay = Next(retryDelay);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Log.UpstreamFailed(_logger, e, feed.ThreadId, address ?? "(none)", feed.LastSequence);
                try
                {
                    // The owner may be gone with events it persisted but never sent: the log has them.
                    await CatchUpFromLogAsync(feed, long.MaxValue, cancellationToken).ConfigureAwait(false);
                    await Task.Delay(retryDelay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception logFailure)
                {
                    Log.UpstreamFailed(_logger, logFailure, feed.ThreadId, "(event log)", feed.LastSequence);
                    await Task.Delay(retryDelay, cancellationToken).ConfigureAwait(false);
                }

                retryDelay = Next(retryDelay);
            }
        }
    }

    private TimeSpan Next(TimeSpan delay) => TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxRetryDelay.Ticks));

    /// <summary>Streams from the owner (following 421s) until the stream ends; says how it went.</summary>
    private async Task<UpstreamOutcome> StreamFromOwnerAsync(ThreadFeed feed, string address, CancellationToken cancellationToken)
    {
        for (var redirects = 0; ; redirects++)
        {
            using var response = await _http.SendAsync(
                HttpMethod.Get, address, ClusterProtocol.EventsPath(feed.ThreadId, feed.LastSequence), null, HttpCompletionOption.ResponseHeadersRead, cancellationToken)
                .ConfigureAwait(false);
            switch (response.StatusCode)
            {
                case HttpStatusCode.NotFound:
                    return UpstreamOutcome.NotActive;
                case HttpStatusCode.MisdirectedRequest:
                    var redirect = await response.Content.ReadFromJsonAsync<OwnerRedirect>(ContractJson.Options, cancellationToken).ConfigureAwait(false);
                    if (redirect is not { OwnerAddress.Length: > 0 } || redirects >= _options.MaxRedirects)
                    {
                        return UpstreamOutcome.Ended;
                    }

                    address = redirect.OwnerAddress;
                    continue;
                case HttpStatusCode.OK:
                    break;
                default:
                    throw new SiloCallException(feed.ThreadId, "events", address, response.StatusCode,
                        await RemoteGrainFactory.DescribeAsync(response, cancellationToken).ConfigureAwait(false));
            }

            Log.UpstreamOpened(_logger, feed.ThreadId, address, feed.LastSequence);
            var delivered = false;
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var parser = SseParser.Create(body, static (_, data) => JsonSerializer.Deserialize<ThreadEvent>(data, ContractJson.Options));
            await foreach (var item in parser.EnumerateAsync(cancellationToken).ConfigureAwait(false))
            {
                if (item.Data is not { } threadEvent || !string.Equals(threadEvent.ThreadId, feed.ThreadId, StringComparison.Ordinal))
                {
                    throw new InvalidDataException($"Silo at {address} sent an event that is not of thread '{feed.ThreadId}'.");
                }

                if (threadEvent.Sequence > feed.LastSequence + 1)
                {
                    await CatchUpFromLogAsync(feed, threadEvent.Sequence - 1, cancellationToken).ConfigureAwait(false);
                    if (feed.LastSequence + 1 != threadEvent.Sequence)
                    {
                        throw new InvalidDataException(
                            $"Silo at {address} sent sequence {threadEvent.Sequence} of thread '{feed.ThreadId}' and the log lacks {feed.LastSequence + 1}.");
                    }
                }

                if (threadEvent.Sequence == feed.LastSequence + 1)
                {
                    Deliver(feed, threadEvent);
                    delivered = true;
                }
            }

            return delivered ? UpstreamOutcome.Delivered : UpstreamOutcome.Ended;
        }
    }

    /// <summary>Delivers the log's events after the last delivered one, up to <paramref name="upTo"/>, stopping at a gap.</summary>
    private async Task CatchUpFromLogAsync(ThreadFeed feed, long upTo, CancellationToken cancellationToken)
    {
        await foreach (var stored in _log.ReadAsync(feed.ThreadId, feed.LastSequence, upTo, cancellationToken).ConfigureAwait(false))
        {
            if (stored.Sequence != feed.LastSequence + 1)
            {
                Log.EventLogGap(_logger, feed.ThreadId, feed.LastSequence + 1);
                return;
            }

            Deliver(feed, stored);
        }
    }

    private void Deliver(ThreadFeed feed, ThreadEvent threadEvent)
    {
        var overflowed = feed.Deliver(threadEvent);
        if (overflowed > 0)
        {
            Log.SubscriberOverflow(_logger, feed.ThreadId, overflowed);
        }
    }

    private enum UpstreamOutcome
    {
        /// <summary>The stream delivered events and ended or was closed by the silo.</summary>
        Delivered,

        /// <summary>The stream ended without a new event, or redirects ran out.</summary>
        Ended,

        /// <summary>Nobody holds the thread's activation.</summary>
        NotActive,
    }
}
