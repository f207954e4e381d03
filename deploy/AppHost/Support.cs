using System.Collections;
using System.Security.Cryptography;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Conversations.AppHost;

/// <summary>The checkout's root: the folder above this build's output that holds deploy/lib/postgres.sh.</summary>
internal static class RepositoryRoot
{
    public static string Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "deploy", "lib", "postgres.sh")) && File.Exists(Path.Combine(dir.FullName, "Conversations.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Conversations checkout (deploy/lib/postgres.sh, Conversations.sln) above {start}.");
    }
}

/// <summary>
/// The private PostgreSQL's superuser password: made once per state directory (mode 600) and kept with the data,
/// since initdb sets it only when it creates the instance.
/// </summary>
internal static class PostgresPassword
{
    public static string LoadOrCreate(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        var file = Path.Combine(stateDirectory, "postgres-password");
        if (File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } existing)
        {
            return existing;
        }

        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(file, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.WriteLine(password);
        }

        return password;
    }
}

/// <summary>Healthy once PostgreSQL answers a query on the database the nodes use (not merely accepts TCP).</summary>
internal sealed class PostgresReadyCheck(string connectionString) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 3 };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy(e.Message);
        }
    }
}

/// <summary>
/// What of the AppHost's own environment reaches the nodes, as deploy/local-cluster.sh passes it: model settings
/// (OPENAI_*, OpenAI__*, DemoModel__*) to the silos only, any other Cluster__* to every node.
/// </summary>
internal static class NodeEnvironment
{
    private static readonly string[] SiloOnlyNames = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"];
    private static readonly string[] SiloOnlyPrefixes = ["OpenAI__", "DemoModel__"];
    private static readonly string[] WiredByAppHost =
        ["Cluster__PostgresConnectionString", "Cluster__AdvertisedAddress", "Cluster__SiloPort", "Cluster__GatewayPort"];

    public static void Forward<T>(IResourceBuilder<T> resource, bool silo)
        where T : IResourceWithEnvironment
    {
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            var name = (string)entry.Key;
            var value = (string?)entry.Value ?? "";
            var siloOnly = SiloOnlyNames.Contains(name, StringComparer.Ordinal) || SiloOnlyPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal));
            var cluster = name.StartsWith("Cluster__", StringComparison.Ordinal) && !WiredByAppHost.Contains(name, StringComparer.Ordinal);
            if ((siloOnly && silo) || cluster)
            {
                resource.WithEnvironment(name, value);
            }
        }
    }
}
