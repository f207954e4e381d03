using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Conversations.AppHost;

/// <summary>One silo's ports: HTTP (health, metrics), silo-to-silo, and the Orleans gateway port gateways connect to.</summary>
public sealed record SiloPorts(int HttpPort, int SiloPort, int GatewayPort);

/// <summary>
/// The AppHost's settings, section <c>Conversations</c> (environment <c>Conversations__X</c>, or
/// <c>--Conversations:X=value</c>). Port lists are space- or comma-separated, one entry per node: the number of
/// entries is the number of silos or gateways.
/// </summary>
public sealed record AppHostSettings(
    string StateDirectory,
    int PostgresPort,
    string? PostgresBinaries,
    IReadOnlyList<SiloPorts> Silos,
    IReadOnlyList<int> GatewayPorts)
{
    public const string SectionName = "Conversations";
    public const string Database = "conversations";

    public static AppHostSettings Read(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var state = section["StateDirectory"] is { Length: > 0 } dir ? dir : Path.Combine(Path.GetTempPath(), "conversations-apphost");
        var postgresPort = Port(section["PostgresPort"] ?? "55442", "PostgresPort");
        var siloHttp = Ports(section["SiloHttpPorts"] ?? "7111 7112", "SiloHttpPorts");
        var siloPorts = Ports(section["SiloPorts"] ?? "11121 11122", "SiloPorts");
        var siloGatewayPorts = Ports(section["SiloGatewayPorts"] ?? "30010 30011", "SiloGatewayPorts");
        var gatewayPorts = Ports(section["GatewayPorts"] ?? "8091 8092", "GatewayPorts");
        if (siloHttp.Count != siloPorts.Count || siloHttp.Count != siloGatewayPorts.Count)
        {
            throw new InvalidOperationException(
                $"{SectionName}:SiloHttpPorts, SiloPorts and SiloGatewayPorts must name as many ports each (one per silo): {siloHttp.Count}, {siloPorts.Count}, {siloGatewayPorts.Count}.");
        }

        if (siloHttp.Count == 0 || gatewayPorts.Count == 0)
        {
            throw new InvalidOperationException($"{SectionName}: at least one silo and one gateway are needed.");
        }

        var silos = siloHttp.Select((http, i) => new SiloPorts(http, siloPorts[i], siloGatewayPorts[i])).ToList();
        var binaries = section["PostgresBinaries"] is { Length: > 0 } bin ? bin : null;
        return new AppHostSettings(Path.GetFullPath(state), postgresPort, binaries, silos, gatewayPorts);
    }

    private static List<int> Ports(string value, string name) =>
        value.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => Port(p, name)).ToList();

    private static int Port(string value, string name) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new InvalidOperationException($"{SectionName}:{name}: '{value}' is not a TCP port.");
}
