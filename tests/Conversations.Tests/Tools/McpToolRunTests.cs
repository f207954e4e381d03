using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Tools;

/// <summary>A run through the gateway in which the scripted model calls an MCP server's tool (the test server, over stdio).</summary>
public sealed class McpToolRunTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_model_calls_an_mcp_tool_and_reads_its_result_and_bad_arguments_never_reach_the_server()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(
                new ScriptedToolCall("call_add", "tests_add", "{\"a\":20,", "\"b\":22}"),
                new ScriptedToolCall("call_bad", "tests_add", "{\"a\":\"twenty\",\"b\":22}")),
            ScriptedResponse.Text("20 + 22 = 42."));
        var settings = McpServers.Stdio();
        settings["Agents:default:Tools:2"] = "tests_add";
        await using var app = GatewayApp.WithModel(model, settings);
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "add 20 and 22", stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Equal("run.completed", events[^1].Type);
        var offered = model.Requests[0].Tools.Single(t => t!["function"]!["name"]!.GetValue<string>() == "tests_add");
        Assert.Equal("Adds two integers.", offered!["function"]!["description"]!.GetValue<string>());
        Assert.Equal("integer", offered["function"]!["parameters"]!["properties"]!["b"]!["type"]!.GetValue<string>());

        var completed = Assert.Single(events, e => e.Type == "tool_call.completed");
        Assert.Equal("call_add", completed.Str("callId"));
        Assert.Equal("42", completed.Str("result"));
        var failed = Assert.Single(events, e => e.Type == "tool_call.failed");
        Assert.Equal("call_bad", failed.Str("callId"));
        Assert.StartsWith("Invalid arguments for 'tests_add': 'a': ", failed.Str("error"), StringComparison.Ordinal);

        var toolMessages = model.Requests[1].Messages.Where(m => m!["role"]!.GetValue<string>() == "tool")
            .ToDictionary(m => m!["tool_call_id"]!.GetValue<string>(), m => m!["content"]!.GetValue<string>());
        Assert.Equal("42", toolMessages["call_add"]);
        Assert.Equal("Error: " + failed.Str("error"), toolMessages["call_bad"]);
    }
}
