using Microsoft.Extensions.Logging;

namespace Conversations.Grains;

/// <summary>Log messages of the configured tools (HTTP and MCP): event ids 1100–1199. No secret is ever an argument.</summary>
internal static partial class Log
{
    public const int McpServerConnectedId = 1100;
    public const int McpServerUnavailableId = 1101;
    public const int McpServerLostId = 1102;
    public const int McpServerReconnectingId = 1103;
    public const int McpToolNameTakenId = 1104;
    public const int McpServerStandardErrorId = 1105;
    public const int McpServerNotClosedId = 1106;

    [LoggerMessage(McpServerConnectedId, LogLevel.Information, "MCP server {Server} ({Endpoint}) connected with {ToolCount} tools: {Tools}")]
    public static partial void McpServerConnected(ILogger logger, string server, string endpoint, int toolCount, string tools);

    [LoggerMessage(McpServerUnavailableId, LogLevel.Warning, "MCP server {Server} ({Endpoint}) is unavailable, its tools are missing until it is reached: {Reason}")]
    public static partial void McpServerUnavailable(ILogger logger, string server, string endpoint, string reason);

    [LoggerMessage(McpServerLostId, LogLevel.Warning, "MCP server {Server} closed the connection during a tool call: {Reason}")]
    public static partial void McpServerLost(ILogger logger, string server, string reason);

    [LoggerMessage(McpServerReconnectingId, LogLevel.Information, "MCP server {Server}: the session ended; connecting again")]
    public static partial void McpServerReconnecting(ILogger logger, string server);

    [LoggerMessage(McpToolNameTakenId, LogLevel.Warning, "MCP server {Server}: tool {Tool} is not offered, another tool is already named {ModelName}")]
    public static partial void McpToolNameTaken(ILogger logger, string server, string tool, string modelName);

    [LoggerMessage(McpServerStandardErrorId, LogLevel.Debug, "MCP server {Server} stderr: {Line}")]
    public static partial void McpServerStandardError(ILogger logger, string server, string line);

    [LoggerMessage(McpServerNotClosedId, LogLevel.Debug, "MCP server {Server}: closing the session failed: {Reason}")]
    public static partial void McpServerNotClosed(ILogger logger, string server, string reason);
}
