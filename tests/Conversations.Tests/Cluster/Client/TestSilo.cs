using Conversations.Silo.Streams.Sse;
using System.Collections.Concurrent;
using System.Net;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Cluster.Client;
using Conversations.Silo.Hosting;
using Conversations.Silo.Runtime;
using Conversations.Silo.Storage.Postgres;
using Conversations.Silo.Streams;
using Conversations.Silo.Streams.InProcess;
using Conversations.Tests.Postgres;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Conversations.Tests.Cluster.Client;

/// <summary>
/// A stand-in for the silo process: the real embedded runtime (activation catalog, thread grain, demo model,
/// in-process stream hub) over this test's PostgreSQL schema, serving the cluster contract's internal endpoints on
/// Kestrel over loopback. It registers itself in the silo table and takes a thread's lease on its first call (then
/// notifies <c>thread_activated</c>). Tests steer it: take or give up a lease, append events, end or abort streams.
/// </summary>
internal sealed class TestSilo : IAsyncDisposable
{
    public const string ClusterKey = "test-cluster-key";
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<HttpContext, (string ThreadId, CancellationTokenSource Ending)> _streams = new();
    private readonly ConcurrentDictionary<string, ThreadLease> _leases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IThreadStream> _producers = new(StringComparer.Ordinal);
    private readonly PostgresDatabase _database;
    private readonly PostgresThreadLeaseStore _leaseStore;
    private readonly PostgresSiloDirectory _directory;
    private readonly string _dataDirectory;
    private WebApplication _app = null!;
    private int _calls;
    private int _eventRequests;

    private TestSilo(string siloId, PostgresDatabase database, string dataDirectory)
    {
        SiloId = siloId;
        _database = database;
        _leaseStore = new PostgresThreadLeaseStore(database);
        _directory = new PostgresSiloDirectory(database);
        _dataDirectory = dataDirectory;
    }

    public string SiloId { get; }

    public string Address { get; private set; } = "";

    /// <summary>Grain calls received (including those answered 421).</summary>
    public int CallCount => Volatile.Read(ref _calls);

    /// <summary>Event stream requests received (including those answered 421 or 404).</summary>
    public int EventRequestCount => Volatile.Read(ref _eventRequests);

    /// <summary>Event streams being served now.</summary>
    public int OpenEventStreams => _streams.Count;

    /// <summary>Events for which this returns true are left out of the served streams (a silo that skips some).</summary>
    public Func<ThreadEvent, bool>? DropFromStream { get; set; }

    public InProcessStreamHub Streams => _app.Services.GetRequiredService<InProcessStreamHub>();

    public static async Task<TestSilo> StartAsync(PostgresFixture fixture, string siloId)
    {
        var database = await fixture.OpenMigratedAsync();
        var dataDirectory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var silo = new TestSilo(siloId, database, dataDirectory);
        await silo.StartServerAsync();
        return silo;
    }

    /// <summary>Takes the thread's lease (as an activation does) and notifies <c>thread_activated</c>; false when another silo holds it.</summary>
    public async Task<bool> ActivateAsync(string threadId)
    {
        var lease = await _leaseStore.TryAcquireAsync(threadId, SiloId, LeaseTtl);
        if (lease is null)
        {
            return false;
        }

        _leases[threadId] = lease;
        await using var notify = _database.DataSource.CreateCommand("SELECT pg_notify(@channel, @thread_id);");
        notify.Parameters.Add(new NpgsqlParameter<string>("channel", ClusterProtocol.ThreadActivatedChannel));
        notify.Parameters.Add(new NpgsqlParameter<string>("thread_id", threadId));
        await notify.ExecuteNonQueryAsync();
        return true;
    }

    /// <summary>Ends the thread's activation here: events are flushed, the lease released, and its event streams end normally.</summary>
    public async Task DeactivateAsync(string threadId)
    {
        await Streams.FlushAsync();
        if (_producers.TryRemove(threadId, out var producer) && producer is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        if (_leases.TryRemove(threadId, out var lease))
        {
            await _leaseStore.ReleaseAsync(lease);
        }

        foreach (var (_, stream) in _streams.Where(s => s.Value.ThreadId == threadId))
        {
            await EndAsync(stream.Ending);
        }
    }

    /// <summary>Breaks the thread's event streams off mid-stream (the connection is aborted).</summary>
    public void AbortEventStreams(string threadId)
    {
        foreach (var (http, _) in _streams.Where(s => s.Value.ThreadId == threadId))
        {
            http.Abort();
        }
    }

    /// <summary>Appends text deltas through this silo's stream hub and waits until they are durable (and so delivered).</summary>
    public async Task<IReadOnlyList<ThreadEvent>> AppendAsync(string threadId, int count)
    {
        if (!_producers.TryGetValue(threadId, out var producer))
        {
            producer = _producers[threadId] = await Streams.GetStreamAsync(threadId);
        }

        var appended = new List<ThreadEvent>();
        for (var i = 0; i < count; i++)
        {
            appended.Add(await producer.AppendAsync(Delta(threadId, $"{SiloId}-{i}")));
        }

        await Streams.FlushAsync();
        return appended;
    }

    public static TextDelta Delta(string threadId, string text, long sequence = 0) => new()
    {
        ThreadId = threadId,
        RunId = "run_test",
        MessageId = "msg_test",
        Text = text,
        Sequence = sequence,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, stream) in _streams)
        {
            await EndAsync(stream.Ending);
        }

        foreach (var producer in _producers.Values.OfType<IAsyncDisposable>())
        {
            await producer.DisposeAsync();
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }

    private async Task StartServerAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:SqlitePath"] = Path.Combine(_dataDirectory, "unused.db"),
            ["OPENAI_API_KEY"] = "",
            ["OPENAI_BASE_URL"] = "",
            ["OPENAI_MODEL"] = "",
            ["DemoModel:TokenDelay"] = "00:00:00",
            ["Runtime:SiloId"] = SiloId,
        });
        // The embedded runtime, with the cluster's stores in place of the SQLite ones (what the silo process does).
        builder.AddEmbeddedSilo();
        builder.Services.Replace(ServiceDescriptor.Singleton<IThreadStore>(new PostgresThreadStore(_database)));
        builder.Services.Replace(ServiceDescriptor.Singleton<IEventLog>(new PostgresEventLog(_database)));
        _app = builder.Build();
        _app.MapPost("/internal/threads/{threadId}/calls/{method}", (string threadId, string method, HttpContext http) => CallAsync(threadId, method, http));
        _app.MapGet("/internal/threads/{threadId}/events", (string threadId, long after, HttpContext http) => EventsAsync(threadId, after, http));
        await _app.StartAsync();
        Address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/";
        await _directory.RegisterAsync(SiloId, Address);
    }

    private async Task CallAsync(string threadId, string method, HttpContext http)
    {
        Interlocked.Increment(ref _calls);
        if (!Authorized(http))
        {
            return;
        }

        var owner = await _leaseStore.GetOwnerAsync(threadId);
        if ((owner is not null && owner.SiloId != SiloId) || (owner is null && !await ActivateAsync(threadId)))
        {
            await MisdirectAsync(http, (await _leaseStore.GetOwnerAsync(threadId))!.SiloId);
            return;
        }

        var grain = _app.Services.GetRequiredService<IGrainFactory>().GetGrain<IThreadGrain>(threadId);
        var ct = http.RequestAborted;
        switch (method)
        {
            case ClusterProtocol.Methods.Create:
                await WriteAsync(http, await grain.CreateAsync(await ReadAsync<CreateThread>(http), ct));
                break;
            case ClusterProtocol.Methods.Get:
                await WriteAsync(http, await grain.GetAsync(ct));
                break;
            case ClusterProtocol.Methods.Messages:
                await WriteAsync(http, await grain.GetMessagesAsync(await ReadAsync<MessagePageRequest>(http), ct));
                break;
            case ClusterProtocol.Methods.Send:
                await WriteAsync(http, await grain.SendMessageAsync(await ReadAsync<SendMessage>(http), ct));
                break;
            case ClusterProtocol.Methods.Append:
                await WriteAsync(http, await grain.AppendMessagesAsync((await ReadAsync<AppendMessagesCall>(http)).Messages, ct));
                break;
            case ClusterProtocol.Methods.Cancel:
                await WriteAsync(http, await grain.CancelRunAsync((await ReadAsync<RunIdCall>(http)).RunId, ct));
                break;
            case ClusterProtocol.Methods.Run:
                await WriteAsync(http, await grain.GetRunAsync((await ReadAsync<RunIdCall>(http)).RunId, ct));
                break;
            default:
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                break;
        }
    }

    private async Task EventsAsync(string threadId, long after, HttpContext http)
    {
        Interlocked.Increment(ref _eventRequests);
        if (!Authorized(http))
        {
            return;
        }

        var owner = await _leaseStore.GetOwnerAsync(threadId);
        if (owner is null)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            await WriteAsync(http, new ThreadNotActive(false));
            return;
        }

        if (owner.SiloId != SiloId)
        {
            await MisdirectAsync(http, owner.SiloId);
            return;
        }

        using var ending = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        _streams[http] = (threadId, ending);
        try
        {
            http.Response.ContentType = "text/event-stream";
            await http.Response.Body.FlushAsync(ending.Token); // headers now: the caller knows it is connected
            var items = KeepAsync(Streams.SubscribeAsync(threadId, after, ending.Token)).ToSseItemsAsync(ending.Token);
            await SseFormatter.WriteAsync(items, http.Response.Body, ending.Token);
        }
        catch (OperationCanceledException) when (ending.IsCancellationRequested)
        {
            // Deactivated (the response ends normally) or the caller left.
        }
        finally
        {
            _streams.TryRemove(http, out _);
        }
    }

    private async IAsyncEnumerable<ThreadEvent> KeepAsync(IAsyncEnumerable<ThreadEvent> events, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            if (DropFromStream?.Invoke(threadEvent) != true)
            {
                yield return threadEvent;
            }
        }
    }

    private static async Task EndAsync(CancellationTokenSource ending)
    {
        try
        {
            await ending.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // The stream ended meanwhile.
        }
    }

    private static bool Authorized(HttpContext http)
    {
        if (http.Request.Headers[ClusterProtocol.ClusterKeyHeader] == ClusterKey)
        {
            return true;
        }

        http.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return false;
    }

    private async Task MisdirectAsync(HttpContext http, string ownerSiloId)
    {
        var owner = (await _directory.ListActiveAsync(TimeSpan.FromHours(1))).Single(s => s.SiloId == ownerSiloId);
        http.Response.StatusCode = (int)HttpStatusCode.MisdirectedRequest;
        await WriteAsync(http, new OwnerRedirect(owner.SiloId, owner.Address));
    }

    private static async Task<T> ReadAsync<T>(HttpContext http) =>
        (await JsonSerializer.DeserializeAsync<T>(http.Request.Body, ContractJson.Options, http.RequestAborted))!;

    // Serialized as T: abstract result records carry their "kind".
    private static Task WriteAsync<T>(HttpContext http, T value)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(value, ContractJson.Options), http.RequestAborted);
    }
}
