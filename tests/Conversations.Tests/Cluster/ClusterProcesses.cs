using Conversations.Tests.Postgres;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Cluster;

/// <summary>
/// The cluster topology as real processes on loopback: silos and stateless gateways sharing one PostgreSQL schema
/// of the test's own.
/// </summary>
internal sealed class ClusterProcesses : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _shared;

    private readonly Dictionary<string, string?> _siloOnly;

    private ClusterProcesses(Dictionary<string, string?> shared, Dictionary<string, string?> siloOnly)
    {
        _shared = shared;
        _siloOnly = siloOnly;
    }

    public List<NodeProcess> Silos { get; } = [];

    public List<NodeProcess> Gateways { get; } = [];

    public static async Task<ClusterProcesses> StartAsync(
        PostgresFixture postgres, int silos, int gateways, IDictionary<string, string?>? settings, CancellationToken cancellationToken,
        IDictionary<string, string?>? siloSettings = null)
    {
        var shared = new Dictionary<string, string?>
        {
            ["Cluster__PostgresConnectionString"] = postgres.ConnectionString,
            ["Cluster__Schema"] = postgres.Schema,
            // Orleans' cluster id: one per test, so clusters of tests running side by side never meet.
            ["Cluster__ClusterId"] = postgres.Schema,
            ["DemoModel__TokenDelay"] = "00:00:00",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            shared[key] = value;
        }

        var cluster = new ClusterProcesses(shared, new Dictionary<string, string?>(siloSettings ?? new Dictionary<string, string?>()));
        try
        {
            // Silos first (they migrate the schema); nodes of one kind start side by side.
            cluster.Silos.AddRange(await Task.WhenAll(Enumerable.Range(1, silos).Select(i => cluster.StartSiloAsync($"silo-{i}", cancellationToken))));
            cluster.Gateways.AddRange(await Task.WhenAll(Enumerable.Range(1, gateways).Select(_ => cluster.StartGatewayAsync(cancellationToken))));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public Task<NodeProcess> StartSiloAsync(string siloName, CancellationToken cancellationToken)
    {
        var environment = new Dictionary<string, string?>(_shared) { ["Orleans__SiloName"] = siloName };
        foreach (var (key, value) in _siloOnly)
        {
            environment[key] = value;
        }

        return NodeProcess.StartSiloAsync(environment, cancellationToken);
    }

    public Task<NodeProcess> StartGatewayAsync(CancellationToken cancellationToken) =>
        NodeProcess.StartGatewayAsync(new Dictionary<string, string?>(_shared), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Gateways.Concat(Silos))
        {
            await node.DisposeAsync();
        }
    }
}
