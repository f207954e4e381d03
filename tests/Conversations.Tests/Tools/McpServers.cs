using Conversations.McpTestServer;

namespace Conversations.Tests.Tools;

/// <summary>Settings that declare the test MCP server (<c>tests/McpTestServer</c>, built beside the tests) as a stdio server.</summary>
public static class McpServers
{
    /// <summary>The test server's assembly, copied into the tests' output with its runtimeconfig.</summary>
    public static string ServerAssembly => typeof(TestTools).Assembly.Location;

    /// <summary>The <c>dotnet</c> host that runs the tests (the CLI says where), else the one on PATH.</summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary><c>Tools:Mcp:{name}</c> settings that start the test server over stdio.</summary>
    public static Dictionary<string, string?> Stdio(string name = "tests") => new()
    {
        [$"Tools:Mcp:{name}:Command"] = DotnetHost,
        [$"Tools:Mcp:{name}:Args:0"] = ServerAssembly,
        // A loaded machine starts a .NET process slowly: a hang guard, not an expectation.
        [$"Tools:Mcp:{name}:ConnectTimeout"] = "00:01:30",
    };
}
