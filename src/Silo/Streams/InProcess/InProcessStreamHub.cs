using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Runtime;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Streams.InProcess;

/// <summary>
/// Thread streams within one process: grains append, gateways' subscribers read. Events are written to the
/// <see cref="IEventLog"/> in batches and delivered live once written, so a subscriber can resume from any
/// sequence it has seen, also after a crash.
/// </summary>
public sealed class InProcessStreamHub : IThreadStreamProvider, IThreadEventSource, IAsyncDisposable
{
    private readonly Dictionary<string, ThreadStreamChannel> _channels = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly IEventLog _log;
    private readonly StreamOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<InProcessStreamHub> _logger;
    private readonly EventPersister _persister;

    public InProcessStreamHub(IEventLog log, IOptions<StreamOptions> options, TimeProvider time, ILogger<InProcessStreamHub> logger)
    {
        _log = log;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _persister = new EventPersister(log, _options.PersistBatchSize, OnPersisted, OnFencedOff, logger);
    }

    /// <summary>How many thread streams are held in memory.</summary>
    public int ChannelCount
    {
        get
        {
            lock (_gate)
            {
                return _channels.Count;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<IThreadStream> GetStreamAsync(string threadId, CancellationToken cancellationToken = default) =>
        GetStreamAsync(threadId, null, cancellationToken);

    /// <summary>The stream provider of one activation: its appends are persisted with its fencing token.</summary>
    public IThreadStreamProvider ForActivation(long? fencingToken) => new FencedProvider(this, fencingToken);

    private async ValueTask<IThreadStream> GetStreamAsync(string threadId, long? fencingToken, CancellationToken cancellationToken)
    {
        var channel = await AcquireAsync(threadId, cancellationToken).ConfigureAwait(false);
        channel.AttachProducer(fencingToken);
        return new Producer(this, channel);
    }

    /// <inheritdoc />
    public IAsyncEnumerable<ThreadEvent> SubscribeAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default) =>
        SubscribeCoreAsync(threadId, afterSequence, untilProducerLeaves: false, cancellationToken);

    private async IAsyncEnumerable<ThreadEvent> SubscribeCoreAsync(
        string threadId, long afterSequence, bool untilProducerLeaves, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = await AcquireAsync(threadId, cancellationToken).ConfigureAwait(false);
        try
        {
            var live = channel.Subscribe(afterSequence, untilProducerLeaves, out var snapshot, out var tailStart);
            try
            {
                await foreach (var next in ReplayThenLive.EnumerateAsync(_log, threadId, afterSequence, tailStart, snapshot, live.Reader, cancellationToken).ConfigureAwait(false))
                {
                    yield return next;
                }
            }
            finally
            {
                channel.Unsubscribe(live);
            }
        }
        finally
        {
            Release(channel);
        }
    }

    /// <summary>
    /// Like <see cref="SubscribeAsync"/>, but the live part ends (normally) when the thread's producer — its grain
    /// activation in this process — goes away, after every event it appended has been delivered. A silo serves
    /// gateways this way: when the stream ends, the gateway looks for the thread's new owner.
    /// </summary>
    public IAsyncEnumerable<ThreadEvent> SubscribeWhileProducingAsync(string threadId, long afterSequence, CancellationToken cancellationToken = default) =>
        SubscribeCoreAsync(threadId, afterSequence, untilProducerLeaves: true, cancellationToken);

    /// <summary>Waits until every event appended so far is in the durable log (and so delivered).</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default) => _persister.FlushAsync(cancellationToken);

    public ValueTask DisposeAsync() => _persister.DisposeAsync();

    private async Task<ThreadStreamChannel> AcquireAsync(string threadId, CancellationToken cancellationToken)
    {
        ThreadStreamChannel channel;
        lock (_gate)
        {
            if (!_channels.TryGetValue(threadId, out channel!))
            {
                channel = new ThreadStreamChannel(threadId, _options);
                channel.Ready = InitializeAsync(channel);
                _channels.Add(threadId, channel);
            }

            channel.References++;
        }

        try
        {
            await channel.Ready.WaitAsync(cancellationToken).ConfigureAwait(false);
            return channel;
        }
        catch
        {
            Release(channel, forget: channel.Ready.IsFaulted);
            throw;
        }
    }

    private async Task InitializeAsync(ThreadStreamChannel channel)
    {
        // Numbering continues after the last persisted event; nothing else numbers this thread in this silo.
        var last = await _log.GetLastSequenceAsync(channel.ThreadId, CancellationToken.None).ConfigureAwait(false);
        channel.Initialize(last);
    }

    private void Release(ThreadStreamChannel channel, bool forget = false)
    {
        lock (_gate)
        {
            channel.References--;
            if (channel.References == 0 && (forget || channel.FullyPersisted))
            {
                _channels.Remove(channel.ThreadId);
            }
        }
    }

    private void OnFencedOff(ThreadStreamChannel channel, int refused)
    {
        Log.EventsFencedOff(_logger, channel.ThreadId, refused);
        channel.FenceOff();
    }

    private void OnPersisted(ThreadStreamChannel channel, long upTo)
    {
        var overflowed = channel.MarkPersisted(upTo);
        if (overflowed > 0)
        {
            Log.SubscriberOverflow(_logger, channel.ThreadId, overflowed);
        }

        lock (_gate)
        {
            // A stream nobody holds stays in memory only until its events are durable.
            if (channel.References == 0 && channel.FullyPersisted && _channels.TryGetValue(channel.ThreadId, out var current) && ReferenceEquals(current, channel))
            {
                _channels.Remove(channel.ThreadId);
            }
        }
    }

    private ThreadEvent Append(ThreadStreamChannel channel, ThreadEvent threadEvent)
    {
        var appended = channel.Append(threadEvent, _time.GetUtcNow());
        _persister.Enqueue(channel, appended);
        return appended;
    }

    /// <summary>The grain's handle on its stream; disposing it releases the stream.</summary>
    private sealed class Producer(InProcessStreamHub hub, ThreadStreamChannel channel) : IThreadStream, IAsyncDisposable
    {
        private int _disposed;

        public long LastSequence => channel.LastSequence;

        public ValueTask<ThreadEvent> AppendAsync(ThreadEvent threadEvent, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
            ArgumentException.ThrowIfNullOrEmpty(threadEvent.ThreadId);
            if (!string.Equals(threadEvent.ThreadId, channel.ThreadId, StringComparison.Ordinal))
            {
                throw new ArgumentException($"An event of thread '{threadEvent.ThreadId}' cannot go on the stream of '{channel.ThreadId}'.", nameof(threadEvent));
            }

            return ValueTask.FromResult(hub.Append(channel, threadEvent));
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                // What the activation appended is delivered before its subscribers that follow it are ended.
                try
                {
                    await hub.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // The log is not answering; followers end now and find the rest in the log later.
                }

                channel.DetachProducer();
                hub.Release(channel);
            }
        }
    }

    private sealed class FencedProvider(InProcessStreamHub hub, long? fencingToken) : IThreadStreamProvider
    {
        public ValueTask<IThreadStream> GetStreamAsync(string threadId, CancellationToken cancellationToken = default) =>
            hub.GetStreamAsync(threadId, fencingToken, cancellationToken);
    }
}
