using System.Collections.Concurrent;
using System.Net;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Conversations.Silo.Hosting;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Cluster;
using Conversations.Tests.Fakes;
using Conversations.Tests.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Conversations.Tests.Grains;

/// <summary>How a <see cref="GrainCluster"/> is set up.</summary>
internal sealed record GrainClusterOptions
{
    public short Silos { get; init; } = 3;

    /// <summary>The model endpoint; null for the built-in demo model.</summary>
    public FakeOpenAiServer? Model { get; init; }

    /// <summary>
    /// Each silo reaches PostgreSQL through a <see cref="TcpRelay"/> of its own, so <see cref="GrainCluster.CrashAsync"/>
    /// can take a silo's database away before it is killed: nothing it does afterwards is stored, as after a crash.
    /// </summary>
    public bool RelayDatabase { get; init; }

    /// <summary>Tools every silo has besides the built-ins (one instance shared by all silos of the process).</summary>
    public IReadOnlyList<Conversations.Grains.Tools.ITool> Tools { get; init; } = [];

    /// <summary>Orleans' response timeout on silos and client (null: Orleans' default, 30 s).</summary>
    public TimeSpan? ResponseTimeout { get; init; }

    /// <summary>More silo settings (they win over the fixture's).</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// An <see cref="InProcessTestCluster"/> of silos configured as cluster mode configures them
/// (<see cref="ClusterSiloExtensions.AddClusterSilo"/>: ADO.NET clustering, grain storage and reminders, our thread
/// history and event log, <see cref="SiloServices.AddGrainServices"/>, the storage failure mapping, the run drain), on a
/// test's own PostgreSQL schema. Silos talk over the test host's in-memory transport and advertise 127.0.0.1; the
/// client finds their gateways through the ADO.NET membership table. The test reads and writes the storage behind
/// the grains' backs through <see cref="History"/>, <see cref="Log"/> and <see cref="ReadStateAsync"/>.
/// </summary>
internal sealed class GrainCluster : IAsyncDisposable
{
    /// <summary>The Orleans state name of the thread grain's state (<c>[PersistentState("thread", …)]</c>).</summary>
    public const string ThreadStateName = "thread";

    private readonly ConcurrentDictionary<string, TcpRelay> _relays = new();

    private GrainCluster(PostgresDatabase database, CapturedLogs logs)
    {
        Database = database;
        History = new PostgresThreadHistory(database);
        Log = new PostgresEventLog(database);
        Logs = logs;
    }

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    /// <summary>The test's own connection to the schema (not a silo's).</summary>
    public PostgresDatabase Database { get; }

    public IThreadHistory History { get; }

    public IEventLog Log { get; }

    /// <summary>Every silo's log lines (Orleans at warning and above, ours at information and above).</summary>
    public CapturedLogs Logs { get; }

    public IManagementGrain Management => Client.GetGrain<IManagementGrain>(0);

    /// <summary>Starts the silos on a migrated schema of <paramref name="fixture"/>; every silo is active when this returns.</summary>
    public static async Task<GrainCluster> StartAsync(PostgresFixture fixture, GrainClusterOptions? options = null)
    {
        options ??= new GrainClusterOptions();
        var database = await fixture.OpenMigratedAsync();
        var grains = new GrainCluster(database, new CapturedLogs());
        var server = new NpgsqlConnectionStringBuilder(fixture.ConnectionString);

        var builder = new InProcessTestClusterBuilder(options.Silos);
        builder.Options.ConfigureFileLogging = false;
        OrleansPostgresCluster.UseConfiguredMembership(builder.Options);
        builder.ConfigureSiloHost((silo, host) =>
        {
            var connection = new NpgsqlConnectionStringBuilder(server.ConnectionString);
            if (options.RelayDatabase)
            {
                var target = new IPEndPoint(IPAddress.Parse(server.Host!), server.Port);
                connection.Port = grains._relays.GetOrAdd(silo.SiloName, _ => new TcpRelay(target)).Port;
            }

            var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
            {
                ["Cluster:PostgresConnectionString"] = connection.ConnectionString,
                ["Cluster:Schema"] = fixture.Schema,
                ["Cluster:AdvertisedAddress"] = "127.0.0.1",
                ["Cluster:MaxPoolSize"] = "10",
                // Whatever the machine has set, tests choose their model explicitly.
                ["OPENAI_API_KEY"] = options.Model is null ? "" : "sk-test-SECRET",
                ["OPENAI_BASE_URL"] = options.Model?.BaseUrl.ToString() ?? "",
                ["OPENAI_MODEL"] = options.Model is null ? "" : "fake-model",
                ["OpenAI:MaxRetries"] = "0",
                ["DemoModel:TokenDelay"] = "00:00:00",
            };
            foreach (var (key, value) in options.Settings)
            {
                settings[key] = value;
            }

            host.Configuration.AddInMemoryCollection(settings);
            host.Logging.ClearProviders();
            host.Logging.SetMinimumLevel(LogLevel.Information);
            host.Logging.AddFilter("Orleans", LogLevel.Warning);
            host.Logging.AddFilter("Microsoft", LogLevel.Warning);
            host.Logging.AddProvider(grains.Logs.For(silo.SiloName));
            foreach (var tool in options.Tools)
            {
                host.Services.AddSingleton(tool);
            }

            host.AddClusterSilo();
        });
        // Reminders as often as Orleans allows: a thread whose silo died is woken on a live one within a test's time.
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Configure<ReminderOptions>(o => o.MinimumReminderPeriod = TimeSpan.FromSeconds(1));
            if (options.ResponseTimeout is { } timeout)
            {
                silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = timeout);
            }
        });
        builder.ConfigureClient(client =>
        {
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = ClusterSiloExtensions.Invariant;
                o.ConnectionString = database.ConnectionString;
            });
            if (options.ResponseTimeout is { } timeout)
            {
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = timeout);
            }
        });

        grains.Cluster = builder.Build();
        try
        {
            await grains.Cluster.DeployAsync();
            foreach (var silo in grains.Cluster.Silos)
            {
                if (!silo.SiloAddress.Endpoint.Address.Equals(IPAddress.Loopback))
                {
                    throw new InvalidOperationException($"Silo {silo.Name} advertises {silo.SiloAddress}, not 127.0.0.1.");
                }
            }
        }
        catch
        {
            await grains.DisposeAsync();
            throw;
        }

        return grains;
    }

    public IThreadGrain Thread(string threadId) => Client.GetGrain<IThreadGrain>(threadId);

    /// <summary>A grain factory inside silo <paramref name="index"/> (calls from there, not through a gateway).</summary>
    public IGrainFactory GrainsOf(int index) => Cluster.Silos[index].ServiceProvider.GetRequiredService<IGrainFactory>();

    /// <summary>The silo that holds the grain's activation now, or null when none does.</summary>
    public InProcessSiloHandle? HostOf(IAddressable grain) =>
        Cluster.TryGetGrainContext(grain.GetGrainId(), out var context)
            ? Cluster.Silos.Single(s => s.SiloAddress.Equals(context.Address.SiloAddress))
            : null;

    /// <summary>The grain's activation now (for its <see cref="IGrainContext.Deactivated"/>), or null.</summary>
    public IGrainContext? ActivationOf(IAddressable grain) =>
        Cluster.TryGetGrainContext(grain.GetGrainId(), out var context) ? context : null;

    /// <summary>The silos where the management grain counts an activation of <paramref name="grain"/>, one entry per activation.</summary>
    public async Task<List<SiloAddress>> ActivationsAsync(IAddressable grain)
    {
        var statistics = await Management.GetDetailedGrainStatistics();
        return [.. statistics.Where(s => s.GrainId == grain.GetGrainId()).Select(s => s.SiloAddress)];
    }

    /// <summary>The thread's state as stored, read through a silo's <c>threads</c> grain storage (ETag included).</summary>
    public async Task<GrainState<ThreadGrainState>> ReadStateAsync(string threadId)
    {
        var state = new GrainState<ThreadGrainState>();
        await StateStorage.ReadStateAsync(ThreadStateName, ThreadGrainId(threadId), state);
        return state;
    }

    /// <summary>Writes the thread's state through the storage with the ETag <paramref name="state"/> carries (another writer).</summary>
    public Task WriteStateAsync(string threadId, GrainState<ThreadGrainState> state) =>
        StateStorage.WriteStateAsync(ThreadStateName, ThreadGrainId(threadId), state);

    /// <summary>The thread's events as the event log holds them.</summary>
    public async Task<List<Conversations.Grains.Abstractions.Events.ThreadEvent>> StoredEventsAsync(string threadId, long afterSequence = 0)
    {
        var events = new List<Conversations.Grains.Abstractions.Events.ThreadEvent>();
        await foreach (var stored in Log.ReadAsync(threadId, afterSequence, cancellationToken: TestContext.Current.CancellationToken))
        {
            events.Add(stored);
        }

        return events;
    }

    /// <summary>
    /// The closest an in-process silo comes to a crash. The test host's kill
    /// (<see cref="InProcessTestCluster.KillSiloAsync(InProcessSiloHandle)"/>) is not one: it stops the host with a
    /// cancelled token, so the application's stopping hooks run (the run drain ends the silo's runs and stores their
    /// end), grains are still deactivated, the silo writes Stopping and Dead into the membership table and goes on
    /// answering messages until then. So its database goes away first (every connection reset, new ones refused) and
    /// its membership writes give up at once: nothing the dying silo does is stored, its membership row stays Active,
    /// and the survivors find out through missed probes, as after a crash. Needs <see cref="GrainClusterOptions.RelayDatabase"/>.
    /// </summary>
    public async Task CrashAsync(InProcessSiloHandle silo)
    {
        // The membership agent reads this on every status write; it bounds the retries of one (else 1 min each).
        silo.ServiceProvider.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value.MaxJoinAttemptTime = TimeSpan.FromMilliseconds(100);
        await CutDatabaseAsync(silo);
        await Cluster.KillSiloAsync(silo);
    }

    /// <summary>Takes the database away from one silo (the others keep theirs). Needs <see cref="GrainClusterOptions.RelayDatabase"/>.</summary>
    public Task CutDatabaseAsync(InProcessSiloHandle silo) => RelayOf(silo).CutAsync();

    /// <summary>Gives a silo its database back after <see cref="CutDatabaseAsync"/>.</summary>
    public void RestoreDatabase(InProcessSiloHandle silo) => RelayOf(silo).Restore();

    private TcpRelay RelayOf(InProcessSiloHandle silo) =>
        _relays.TryGetValue(silo.Name, out var relay)
            ? relay
            : throw new InvalidOperationException($"Silo {silo.Name} has no database relay: start the cluster with RelayDatabase.");

    public async ValueTask DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }

        foreach (var relay in _relays.Values)
        {
            await relay.DisposeAsync();
        }
    }

    private static GrainId ThreadGrainId(string threadId) => GrainId.Create("thread", threadId);

    private IGrainStorage StateStorage =>
        Cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>(ThreadGrain.StorageName);
}

/// <summary>Log lines of every silo of a test cluster, kept in memory for failure messages.</summary>
internal sealed class CapturedLogs
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public ILoggerProvider For(string silo) => new Provider(this, silo);

    public bool Contains(string text) => _lines.Any(l => l.Contains(text, StringComparison.Ordinal));

    public override string ToString() => string.Join(Environment.NewLine, _lines);

    private sealed class Provider(CapturedLogs logs, string silo) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(logs, silo, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(CapturedLogs logs, string silo, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = $"{DateTimeOffset.UtcNow:HH:mm:ss.fff} [{silo}] {logLevel} {category}: {formatter(state, exception)}";
            logs._lines.Enqueue(exception is null ? line : $"{line} ({exception.GetType().Name}: {exception.Message})");
        }
    }
}
