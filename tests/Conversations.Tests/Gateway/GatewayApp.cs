using System.Net;
using Conversations.Gateway.Cluster;
using Conversations.Silo.Hosting;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Fakes;
using Conversations.Tests.Postgres;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Conversations.Tests.Gateway;

/// <summary>Where a <see cref="GatewayApp"/>'s grains run.</summary>
public enum GatewayTopology
{
    /// <summary>The gateway co-hosts the silo, on a SQLite file of its own.</summary>
    Embedded,

    /// <summary>The gateway is an Orleans client of a cluster silo of its own (in this process), on a PostgreSQL schema of its own.</summary>
    Cluster,
}

/// <summary>
/// The gateway on Kestrel over loopback (real sockets), the model either the fake OpenAI-compatible server or the
/// built-in demo model, in one of two topologies (<see cref="GatewayTopology"/>): embedded (its own silo, a SQLite
/// file of its own) or, when <c>CONVERSATIONS_TEST_TOPOLOGY=cluster</c>, cluster mode: a cluster silo started first
/// in this process (a generic host with <see cref="ClusterSiloExtensions.AddClusterSilo"/>) on a fresh PostgreSQL
/// schema, and the gateway its Orleans client. A test that exercises the embedded process itself says so
/// (<see cref="Embedded"/>, or <c>topology: GatewayTopology.Embedded</c>) and runs embedded in both passes.
/// </summary>
public sealed class GatewayApp : WebApplicationFactory<Program>
{
    /// <summary>The environment variable that selects the topology of tests that do not choose one.</summary>
    public const string TopologyVariable = "CONVERSATIONS_TEST_TOPOLOGY";

    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _configureServices;
    private readonly GatewayApp? _clusterOf;
    private HttpClient? _client;
    private PostgresFixture? _postgres;
    private IHost? _silo;
    private Dictionary<string, string?>? _clusterSettings;

    public GatewayApp(
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null,
        string? dataDirectory = null,
        GatewayTopology? topology = null)
        : this(settings, configureServices, dataDirectory, topology, clusterOf: null)
    {
    }

    private GatewayApp(
        IDictionary<string, string?>? settings,
        Action<IServiceCollection>? configureServices,
        string? dataDirectory,
        GatewayTopology? topology,
        GatewayApp? clusterOf)
    {
        _clusterOf = clusterOf;
        Topology = clusterOf?.Topology ?? topology ?? ConfiguredTopology;
        DataDirectory = dataDirectory ?? Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        _settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Storage:SqlitePath"] = Path.Combine(DataDirectory, "conversations.db"),
            // Whatever the machine has set, tests choose their model explicitly.
            ["OPENAI_API_KEY"] = "",
            ["OPENAI_BASE_URL"] = "",
            ["OPENAI_MODEL"] = "",
            ["DemoModel:TokenDelay"] = "00:00:00",
            // Longer than any hang guard: a stream whose headers wait for the first heartbeat fails the test.
            ["Streaming:HeartbeatInterval"] = "00:10:00",
            // The embedded silo's ports, from the tests' allocator rather than the OS's ephemeral range (LoopbackPorts).
            ["Orleans:SiloPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Orleans:GatewayPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }

        _configureServices = configureServices;
        // Not UseKestrel(0): with a port, the factory rewrites the server addresses after the minimal-hosting app has
        // started binding on its own thread, and intermittently throws "Addresses cannot be modified after the server
        // has started" (dotnet/aspnetcore#67714). A port-0 URL in the host configuration binds a free port instead.
        UseKestrel();
    }

    /// <summary>The topology of tests that do not choose one: <c>CONVERSATIONS_TEST_TOPOLOGY</c> (<c>embedded</c>, the default, or <c>cluster</c>).</summary>
    public static GatewayTopology ConfiguredTopology =>
        Environment.GetEnvironmentVariable(TopologyVariable)?.Trim().ToLowerInvariant() switch
        {
            null or "" or "embedded" => GatewayTopology.Embedded,
            "cluster" => GatewayTopology.Cluster,
            var other => throw new InvalidOperationException($"{TopologyVariable} must be 'embedded' or 'cluster', not '{other}'."),
        };

    /// <summary>A gateway whose model is the fake server.</summary>
    public static GatewayApp WithModel(
        FakeOpenAiServer model,
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null,
        GatewayTopology? topology = null)
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-test-SECRET",
            ["OPENAI_MODEL"] = "fake-model",
            ["OpenAI:MaxRetries"] = "0",
        };
        return new GatewayApp(all, configureServices, topology: topology);
    }

    /// <summary>
    /// Another gateway of <paramref name="first"/>'s cluster (cluster topology, started): an Orleans client of the same
    /// silo and schema, with no silo of its own, so a test sees what one gateway does from another.
    /// </summary>
    public static GatewayApp SecondGatewayOf(GatewayApp first, IDictionary<string, string?>? settings = null)
    {
        if (first.Topology != GatewayTopology.Cluster)
        {
            throw new InvalidOperationException("Only a cluster-topology gateway has a cluster another gateway can join.");
        }

        _ = first.Client; // its silo is up
        return new GatewayApp(settings, configureServices: null, dataDirectory: null, topology: null, clusterOf: first);
    }

    /// <summary>
    /// An embedded gateway whatever <c>CONVERSATIONS_TEST_TOPOLOGY</c> says: for tests of the embedded process itself
    /// (its co-hosted silo, its SQLite file).
    /// </summary>
    public static GatewayApp Embedded(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null) =>
        new(settings, configureServices, topology: GatewayTopology.Embedded);

    /// <summary>An embedded gateway whose model is the fake server, whatever <c>CONVERSATIONS_TEST_TOPOLOGY</c> says.</summary>
    public static GatewayApp EmbeddedWithModel(FakeOpenAiServer model, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null) =>
        WithModel(model, settings, configureServices, GatewayTopology.Embedded);

    public GatewayTopology Topology { get; }

    /// <summary>What the gateway's <c>/health</c> reports as its mode.</summary>
    public string ModeName => Topology == GatewayTopology.Cluster ? "cluster" : "embedded";

    /// <summary>The name of the storage check in <c>/health/ready</c>: the SQLite file's, or the cluster's PostgreSQL.</summary>
    public string StorageCheckName => Topology == GatewayTopology.Cluster ? "postgres" : "storage";

    /// <summary>The embedded topology's folder (its SQLite file).</summary>
    public string DataDirectory { get; }

    /// <summary>A client over real HTTP to this gateway.</summary>
    public HttpClient Client
    {
        get
        {
            if (_client is null)
            {
                StartServer();
                _client = CreateClient();
                _client.Timeout = Timeout.InfiniteTimeSpan;
            }

            return _client;
        }
    }

    /// <summary>
    /// Runs <paramref name="sql"/> on the gateway's storage behind its back (the SQLite file embedded, the PostgreSQL
    /// schema in cluster mode) with <c>@id</c> bound to <paramref name="id"/>; returns the first column of the first
    /// row as a long (0 for no row or null), e.g. a count.
    /// </summary>
    public async Task<long> QueryStorageAsync(string sql, string id)
    {
        if (Topology == GatewayTopology.Cluster)
        {
            var postgres = _postgres ?? throw new InvalidOperationException("The cluster silo has not started.");
            await using var dataSource = NpgsqlDataSource.Create($"{postgres.ConnectionString};Search Path={postgres.Schema};Pooling=false");
            await using var command = dataSource.CreateCommand(sql);
            command.Parameters.AddWithValue("id", id);
            return await command.ExecuteScalarAsync(TestContext.Current.CancellationToken) is { } value and not DBNull ? Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        }

        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(DataDirectory, "conversations.db"), Pooling = false }.ToString());
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var sqlite = connection.CreateCommand();
        sqlite.CommandText = sql;
        sqlite.Parameters.AddWithValue("@id", id);
        return await sqlite.ExecuteScalarAsync(TestContext.Current.CancellationToken) is { } result and not DBNull ? Convert.ToInt64(result, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseUrls("http://127.0.0.1:0");
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        if (Topology == GatewayTopology.Cluster)
        {
            // The factory calls this before it builds the gateway's host: the silo is up (and in the membership table)
            // first. Off the test's synchronization context, since this is synchronous.
            _clusterSettings ??= _clusterOf?._clusterSettings ?? Task.Run(StartClusterSiloAsync).GetAwaiter().GetResult();

            // Host settings, not app configuration: Program chooses its mode from them before it builds the app.
            foreach (var (key, value) in _clusterSettings)
            {
                builder.UseSetting(key, value);
            }
        }

        // Room for a silo to stop on a loaded CI machine (a stop over it fails the test at dispose).
        builder.ConfigureServices(services => services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10)));
        if (_configureServices is not null)
        {
            builder.ConfigureServices(_configureServices);
        }
    }

    /// <summary>Creates the schema's fixture, starts the silo on it; returns the gateway's cluster settings.</summary>
    private async Task<Dictionary<string, string?>> StartClusterSiloAsync()
    {
        _postgres = await PostgresFixture.CreateAsync();
        var cluster = new Dictionary<string, string?>
        {
            ["Cluster:PostgresConnectionString"] = _postgres.ConnectionString,
            ["Cluster:Schema"] = _postgres.Schema,
            ["Cluster:ClusterId"] = _postgres.Schema,
        };

        // A free port can be taken by someone else between the check and the bind: then try again with others.
        for (var attempt = 1; ; attempt++)
        {
            var silo = BuildClusterSilo(cluster);
            try
            {
                await silo.StartAsync(TestContext.Current.CancellationToken);
                _silo = silo;
                return cluster;
            }
            catch (Exception) when (attempt < 3 && !TestContext.Current.CancellationToken.IsCancellationRequested)
            {
                await StopAndDisposeAsync(silo);
            }
            catch
            {
                await StopAndDisposeAsync(silo);
                throw;
            }
        }
    }

    private IHost BuildClusterSilo(Dictionary<string, string?> cluster)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            EnvironmentName = "Testing",
            // The gateway's appsettings.json (agents' defaults) is copied here, as the silo image has it.
            ContentRootPath = AppContext.BaseDirectory,
        });
        var settings = new Dictionary<string, string?>(_settings, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in cluster)
        {
            settings[key] = value;
        }

        settings["Cluster:AdvertisedAddress"] = IPAddress.Loopback.ToString();
        settings["Cluster:SiloPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Cluster:GatewayPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));
        _configureServices?.Invoke(builder.Services);
        builder.AddClusterSilo();
        return builder.Build();
    }

    private static async Task StopAndDisposeAsync(IHost silo)
    {
        try
        {
            await silo.StopAsync(CancellationToken.None);
        }
        finally
        {
            // AddClusterSilo registers its database as an instance, which the container does not dispose.
            var database = silo.Services.GetService<PostgresDatabase>();
            silo.Dispose();
            if (database is not null)
            {
                await database.DisposeAsync();
                // Orleans' ADO.NET providers pool by connection string (this schema's own): close those connections too.
                await using var connection = new NpgsqlConnection(database.ConnectionString);
                NpgsqlConnection.ClearPool(connection);
            }
        }
    }


    /// <summary>Stops the gateway, then (cluster) the silo, then drops the schema.</summary>
    public override async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            try
            {
                if (_silo is not null)
                {
                    await StopAndDisposeAsync(_silo);
                }
            }
            finally
            {
                if (_postgres is not null)
                {
                    // The gateway's pool for the membership table (its own connection string).
                    var gateway = new ClusterClientOptions { PostgresConnectionString = _postgres.ConnectionString, Schema = _postgres.Schema };
                    await using (var connection = new NpgsqlConnection(gateway.MembershipConnectionString()))
                    {
                        NpgsqlConnection.ClearPool(connection);
                    }

                    await _postgres.DisposeAsync();
                }

                SqliteConnection.ClearAllPools();
                try
                {
                    Directory.Delete(DataDirectory, recursive: true);
                }
                catch (DirectoryNotFoundException)
                {
                    // Nothing was written.
                }
            }
        }
    }
}
