using Conversations.Tests.Fakes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Conversations.Tests.Gateway;

/// <summary>
/// The gateway (with its embedded silo) on Kestrel over loopback: real sockets, a SQLite file of its own, and the
/// model either the fake OpenAI-compatible server or the built-in demo model.
/// </summary>
public sealed class GatewayApp : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _configureServices;
    private HttpClient? _client;

    public GatewayApp(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null, string? dataDirectory = null)
    {
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

    /// <summary>A gateway whose model is the fake server.</summary>
    public static GatewayApp WithModel(FakeOpenAiServer model, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null)
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["OPENAI_BASE_URL"] = model.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-test-SECRET",
            ["OPENAI_MODEL"] = "fake-model",
            ["OpenAI:MaxRetries"] = "0",
        };
        return new GatewayApp(all, configureServices);
    }

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

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseUrls("http://127.0.0.1:0");
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        builder.ConfigureServices(services => services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3)));
        if (_configureServices is not null)
        {
            builder.ConfigureServices(_configureServices);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        await base.DisposeAsync();
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
