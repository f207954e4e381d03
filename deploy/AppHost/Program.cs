using Conversations.AppHost;
using Microsoft.Extensions.DependencyInjection;

// One `dotnet run --project deploy/AppHost`: PostgreSQL (an executable: no container engine is assumed), 2 silos,
// then 2 gateways in cluster mode, each wired by the same Cluster:* keys deploy/local-cluster.sh sets, and the Aspire
// dashboard receiving every .NET process's OTLP traces, metrics and logs. Settings: section Conversations (see
// AppHostSettings and deploy/AppHost/README.md).
var builder = DistributedApplication.CreateBuilder(args);
var settings = AppHostSettings.Read(builder.Configuration);
var repositoryRoot = RepositoryRoot.Find(AppContext.BaseDirectory);
var password = PostgresPassword.LoadOrCreate(settings.StateDirectory);
var connectionString = $"Host=127.0.0.1;Port={settings.PostgresPort};Database={AppHostSettings.Database};Username=postgres;Password={password}";

builder.Services.AddHealthChecks().AddCheck("postgres-accepts-queries", new PostgresReadyCheck(connectionString));
var postgres = builder.AddExecutable("postgres", "bash", repositoryRoot, Path.Combine(repositoryRoot, "deploy", "AppHost", "postgres.sh"))
    .WithEnvironment("PG_DIR", Path.Combine(settings.StateDirectory, "postgres"))
    .WithEnvironment("PG_PORT", settings.PostgresPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
    .WithEnvironment("PG_PASSWORD", password)
    .WithEnvironment("PG_DATABASE", AppHostSettings.Database)
    .WithHealthCheck("postgres-accepts-queries");
if (settings.PostgresBinaries is { } binaries)
{
    postgres.WithEnvironment("PG_BIN", binaries);
}

var silos = new List<IResourceBuilder<ProjectResource>>();
for (var i = 0; i < settings.Silos.Count; i++)
{
    var silo = settings.Silos[i];
    var resource = builder.AddProject<Projects.Silo>($"silo-{i + 1}", options => options.ExcludeLaunchProfile = true)
        .WithHttpEndpoint(port: silo.HttpPort, targetPort: silo.HttpPort, name: "http", isProxied: false)
        .WithHttpHealthCheck("/health/ready")
        .WithEnvironment("Cluster__PostgresConnectionString", connectionString)
        .WithEnvironment("Cluster__AdvertisedAddress", "127.0.0.1")
        .WithEnvironment("Cluster__SiloPort", silo.SiloPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .WithEnvironment("Cluster__GatewayPort", silo.GatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .WaitFor(postgres);
    NodeEnvironment.Forward(resource, silo: true);
    silos.Add(resource);
}

for (var i = 0; i < settings.GatewayPorts.Count; i++)
{
    var port = settings.GatewayPorts[i];
    var gateway = builder.AddProject<Projects.Gateway>($"gateway-{i + 1}", options => options.ExcludeLaunchProfile = true)
        .WithHttpEndpoint(port: port, targetPort: port, name: "http", isProxied: false)
        .WithHttpHealthCheck("/health/ready")
        .WithEnvironment("Cluster__PostgresConnectionString", connectionString);
    NodeEnvironment.Forward(gateway, silo: false);
    foreach (var silo in silos)
    {
        gateway.WaitFor(silo);
    }
}

builder.Build().Run();
