using System.ComponentModel;
using System.Globalization;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace Conversations.McpTestServer;

/// <summary>The tools of the test MCP server.</summary>
[McpServerToolType]
public sealed class TestTools
{
    private static int _calls;

    [McpServerTool(Name = "add"), Description("Adds two integers.")]
    public static string Add([Description("The first number.")] int a, [Description("The second number.")] int b) =>
        (a + b).ToString(CultureInfo.InvariantCulture);

    [McpServerTool(Name = "echo"), Description("Returns the text it is given.")]
    public static string Echo(string text) => text;

    [McpServerTool(Name = "env"), Description("Returns the value of an environment variable of the server process.")]
    public static string Env(string name) => Environment.GetEnvironmentVariable(name) ?? "(unset)";

    [McpServerTool(Name = "fail"), Description("Fails with the message it is given.")]
    public static string Fail(string message) => throw new McpException(message);

    [McpServerTool(Name = "whoami"), Description("The server process's id and how many calls it has answered.")]
    public static string WhoAmI() =>
        $"pid={Environment.ProcessId} calls={Interlocked.Increment(ref _calls)}";

    [McpServerTool(Name = "exit"), Description("Ends the server process at once (to test reconnection).")]
    public static string Exit()
    {
        Environment.Exit(3);
        return "unreachable";
    }
}
