using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Mcp;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Tools;

/// <summary>
/// The silo's tool services (<see cref="ToolServices.AddConfiguredTools"/>, the <c>calculate</c> built-in) in a
/// container of their own over in-memory configuration, with the log captured: the real registry, HTTP client
/// factory, resilience handler and MCP clients, without a silo.
/// </summary>
public sealed class ToolHost : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private ToolHost(ServiceProvider services, CapturedLogs logs)
    {
        _services = services;
        Logs = logs;
    }

    public CapturedLogs Logs { get; }

    public ToolRegistry Registry => _services.GetRequiredService<ToolRegistry>();

    public IServiceProvider Services => _services;

    /// <summary>A host over <paramref name="settings"/>; with <paramref name="start"/>, the MCP servers are connected and listed first, as at silo start.</summary>
    public static async Task<ToolHost> StartAsync(IDictionary<string, string?> settings, bool start = true, CancellationToken cancellationToken = default)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var logs = new CapturedLogs();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton(TimeProvider.System)
            .AddLogging(logging => logging.SetMinimumLevel(LogLevel.Trace).AddProvider(logs))
            .AddSingleton<ITool, CalculateTool>()
            .AddConfiguredTools()
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        var host = new ToolHost(services, logs);
        if (start)
        {
            await services.GetRequiredService<McpToolSource>().StartAsync(cancellationToken);
        }

        return host;
    }

    /// <summary>The tool the model would call by <paramref name="name"/>; fails the test when there is none.</summary>
    public ITool Tool(string name) => Registry.Find(name) ?? throw new Xunit.Sdk.XunitException(
        $"No tool '{name}'; there are: {string.Join(", ", Registry.All.Select(t => t.Definition.Name))}");

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
