using Conversations.Tests.Processes;

namespace Conversations.Tests.Deploy;

/// <summary>
/// <c>deploy/validate.py</c> (offline checks of docker-compose.yml, deploy/k8s and deploy/docker against the code)
/// passes on the repository's files and names what is wrong in a broken copy.
/// </summary>
public sealed class DeployValidationTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_deployment_files_pass_validation()
    {
        var (exitCode, output) = await ValidateAsync(RepositoryRoot(), []);

        Assert.True(exitCode == 0, output);
        Assert.StartsWith("ok:", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("k8s/secret.yaml", "  Cluster__PostgresConnectionString: \"Host=", "  Cluster__PostgresConnectionStrin: \"Host=",
        "k8s gateway: missing gateway settings ['Cluster__PostgresConnectionString']")]
    [InlineData("docker-compose.yml", "  Cluster__ServiceId: conversations\n", "  Cluster__ServiceId: conversations\n  Cluster__ClusterKey: dev-key\n",
        "compose gateway-1: stale setting Cluster__ClusterKey")]
    [InlineData("k8s/configmap.yaml", "  Cluster__ServiceId: conversations\n", "  Cluster__ServiceId: conversations\n  Cluster__LeaseTtl: \"00:00:10\"\n",
        "k8s silo: stale setting Cluster__LeaseTtl")]
    [InlineData("k8s/configmap.yaml", "Cluster__MissedProbesLimit", "Cluster__MissedProbeLimit",
        "k8s silo: Cluster__MissedProbeLimit is not a silo setting")]
    [InlineData("k8s/configmap.yaml", "Cluster__SiloPort: \"11111\"", "Cluster__SiloPort: \"11112\"",
        "k8s silo: containerPorts lack the silo-to-silo port 11112")]
    [InlineData("k8s/silo.yaml", "fieldPath: status.podIP", "fieldPath: status.hostIP",
        "k8s silo: Cluster__AdvertisedAddress must come from the downward API")]
    [InlineData("k8s/silo.yaml", "path: /health/ready", "path: /internal/health",
        "k8s silo: readiness path /internal/health is not a silo route")]
    [InlineData("k8s/silo.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30",
        "k8s silo: terminationGracePeriodSeconds 30 must exceed the host's shutdown timeout 45 s")]
    [InlineData("k8s/gateway.yaml", "                name: conversations-cluster\n          lifecycle:", "                name: conversations-cluster\n            - configMapRef:\n                name: conversations-model\n          lifecycle:",
        "k8s gateway: model setting OPENAI_BASE_URL on a gateway")]
    [InlineData("k8s/gateway.yaml", "path: /health/live", "path: /health",
        "k8s gateway: liveness on /health fails when another process is down")]
    [InlineData("docker-compose.yml", "Cluster__AdvertisedAddress: \"${CONVERSATIONS_NET:-172.28.5}.12\"", "Cluster__AdvertisedAddress: \"${CONVERSATIONS_NET:-172.28.5}.13\"",
        "compose silo-2: advertises 172.28.5.13 but its ipv4_address on cluster is 172.28.5.12")]
    [InlineData("docker-compose.yml", "Cluster__ProbeTimeout: \"00:00:02\"", "Cluster__ProbeTimeout: \"2s\"",
        "compose silo-1: Cluster__ProbeTimeout='2s' is not a TimeSpan")]
    [InlineData("docker-compose.yml", "  stop_grace_period: 60s\n", "",
        "compose silo-1: stop_grace_period 10s (default) must exceed the host's shutdown timeout 45 s")]
    [InlineData("docker/Silo.Dockerfile", "EXPOSE 8080 11111 30000", "EXPOSE 8080",
        "deploy/docker/Silo.Dockerfile: EXPOSE lacks the silo-to-silo port 11111")]
    public async Task A_broken_copy_fails_validation_naming_the_problem(string file, string original, string broken, string expected)
    {
        var root = RepositoryRoot();
        var copy = Directory.CreateTempSubdirectory("conversations-deploy-");
        try
        {
            Directory.CreateDirectory(Path.Combine(copy.FullName, "k8s"));
            Directory.CreateDirectory(Path.Combine(copy.FullName, "docker"));
            File.Copy(Path.Combine(root, "docker-compose.yml"), Path.Combine(copy.FullName, "docker-compose.yml"));
            foreach (var (from, to) in new[] { ("k8s", "*.yaml"), ("docker", "*.Dockerfile") })
            {
                foreach (var path in Directory.GetFiles(Path.Combine(root, "deploy", from), to))
                {
                    File.Copy(path, Path.Combine(copy.FullName, from, Path.GetFileName(path)));
                }
            }

            var target = Path.Combine(copy.FullName, file);
            var text = await File.ReadAllTextAsync(target, Guard);
            Assert.Contains(original, text, StringComparison.Ordinal);
            await File.WriteAllTextAsync(target, text.Replace(original, broken, StringComparison.Ordinal), Guard);

            var (exitCode, output) = await ValidateAsync(root,
            [
                "--compose", Path.Combine(copy.FullName, "docker-compose.yml"),
                "--k8s", Path.Combine(copy.FullName, "k8s"),
                "--docker", Path.Combine(copy.FullName, "docker"),
            ]);

            Assert.True(exitCode == 1, output);
            Assert.Contains("FAIL " + expected, output, StringComparison.Ordinal);
        }
        finally
        {
            copy.Delete(recursive: true);
        }
    }

    private static Task<(int ExitCode, string Output)> ValidateAsync(string root, string[] arguments) =>
        RepositoryScripts.RunAsync(root, "python3", [Path.Combine(root, "deploy", "validate.py"), .. arguments], null, Guard);

    private static string RepositoryRoot() => RepositoryScripts.Root();
}
