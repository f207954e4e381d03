using Conversations.Grains.Abstractions.Events;
using Conversations.Silo.Cluster.Client;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Postgres;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conversations.Tests.Cluster.Client;

/// <summary>The gateway side of the cluster client, as the gateway will wire it, on this test's schema.</summary>
internal sealed class ClusterGateway : IAsyncDisposable
{
    private ClusterGateway(PostgresDatabase database, ClusterClientOptions options, IThreadLeaseStore? leases)
    {
        Log = new PostgresEventLog(database);
        Locator = new SiloLocator(leases ?? new PostgresThreadLeaseStore(database), new PostgresSiloDirectory(database), options);
        Http = new SiloHttpClient(options);
        Grains = new RemoteGrainFactory(Locator, Http, NullLogger<RemoteGrainFactory>.Instance);
        Activations = new ThreadActivationListener(database, NullLogger<ThreadActivationListener>.Instance);
        Events = new ClusterThreadEventSource(Locator, Http, Log, Activations, NullLogger<ClusterThreadEventSource>.Instance);
    }

    public PostgresEventLog Log { get; }
    public SiloLocator Locator { get; }
    public SiloHttpClient Http { get; }
    public RemoteGrainFactory Grains { get; }
    public ThreadActivationListener Activations { get; }
    public ClusterThreadEventSource Events { get; }

    public static async Task<ClusterGateway> StartAsync(PostgresFixture fixture, Action<ClusterClientOptions>? configure = null, IThreadLeaseStore? leases = null)
    {
        var options = new ClusterClientOptions { ClusterKey = TestSilo.ClusterKey, IdlePollInterval = TimeSpan.FromMinutes(10) };
        configure?.Invoke(options);
        var gateway = new ClusterGateway(await fixture.OpenMigratedAsync(), options, leases);
        await gateway.Activations.Listening.WaitAsync(TestTimeouts.Guard());
        return gateway;
    }

    /// <summary>Writes events straight to the log, as a silo's persister would.</summary>
    public Task PersistAsync(string threadId, long from, long to) =>
        Log.AppendAsync([.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(s => (ThreadEvent)TestSilo.Delta(threadId, $"log-{s}", s))]);

    public async ValueTask DisposeAsync()
    {
        await Events.DisposeAsync();
        await Activations.DisposeAsync();
        Http.Dispose();
    }
}

/// <summary>A local subscriber reading in the background; tests wait for a sequence and inspect what arrived.</summary>
internal sealed class TestSubscriber : IAsyncDisposable
{
    private readonly List<ThreadEvent> _received = [];
    private readonly List<(long Sequence, TaskCompletionSource Reached)> _waiters = [];
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
    private readonly Task _reading;
    private Exception? _error;

    public TestSubscriber(IAsyncEnumerable<ThreadEvent> events)
    {
        _reading = Task.Run(() => ReadAsync(events));
    }

    public IReadOnlyList<long> Sequences
    {
        get
        {
            lock (_received)
            {
                return [.. _received.Select(e => e.Sequence)];
            }
        }
    }

    public IReadOnlyList<ThreadEvent> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    /// <summary>Completes when an event with this sequence (or later) has arrived; fails if the stream ends first or the guard fires.</summary>
    public async Task WaitForAsync(long sequence)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_received)
        {
            if (_received.Count > 0 && _received[^1].Sequence >= sequence)
            {
                return;
            }

            if (_error is not null)
            {
                throw new InvalidOperationException($"The subscription ended before sequence {sequence}; it got [{string.Join(",", _received.Select(e => e.Sequence))}].", _error);
            }

            _waiters.Add((sequence, reached));
        }

        try
        {
            await reached.Task.WaitAsync(TestTimeouts.Guard());
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"Timed out waiting for sequence {sequence}; got [{string.Join(",", Sequences)}].");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reading;
        _stop.Dispose();
    }

    private async Task ReadAsync(IAsyncEnumerable<ThreadEvent> events)
    {
        try
        {
            await foreach (var threadEvent in events.WithCancellation(_stop.Token))
            {
                lock (_received)
                {
                    _received.Add(threadEvent);
                    foreach (var waiter in _waiters.Where(w => w.Sequence <= threadEvent.Sequence).ToList())
                    {
                        waiter.Reached.TrySetResult();
                        _waiters.Remove(waiter);
                    }
                }
            }

            Fail(new InvalidOperationException("The subscription ended."));
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Fail(Exception e)
    {
        lock (_received)
        {
            _error = e;
            foreach (var waiter in _waiters)
            {
                waiter.Reached.TrySetException(new InvalidOperationException($"The subscription ended before sequence {waiter.Sequence}.", e));
            }

            _waiters.Clear();
        }
    }
}
