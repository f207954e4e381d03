using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Mcp;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Tools;

/// <summary>
/// MCP servers' tools through the silo's MCP clients: the test server started over stdio as a process of its own, and
/// served over streamable HTTP in this process.
/// </summary>
public sealed class McpToolTests
{
    private const string Secret = "mcp-token-0123456789-SECRET";

    private static CancellationToken Guard => TestTimeouts.Guard();

    private static JsonElement Args(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task A_stdio_server_tools_are_listed_under_the_server_prefix_and_called()
    {
        await using var host = await ToolHost.StartAsync(McpServers.Stdio(), cancellationToken: Guard);

        var names = host.Registry.All.Select(t => t.Definition.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "calculate", "tests_add", "tests_echo", "tests_env", "tests_fail", "tests_whoami", "tests_exit" }, names);
        var add = host.Tool("tests_add");
        Assert.Equal("Adds two integers.", add.Definition.Description);
        var properties = add.Definition.ParametersSchema.GetProperty("properties");
        Assert.Equal("integer", properties.GetProperty("a").GetProperty("type").GetString());
        Assert.Equal("The first number.", properties.GetProperty("a").GetProperty("description").GetString());

        Assert.Equal("5", await add.InvokeAsync(Args("""{"a":2,"b":3}"""), Guard));
        Assert.Equal("héllo\nworld", await host.Tool("tests_echo").InvokeAsync(Args("""{"text":"héllo\nworld"}"""), Guard));
        Assert.Contains(host.Logs.Lines, l => l.EventId.Id == 1100 && l.Message.Contains("MCP server tests", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tool_that_reports_an_error_fails_the_call_with_its_message()
    {
        await using var host = await ToolHost.StartAsync(McpServers.Stdio(), cancellationToken: Guard);

        var error = await Assert.ThrowsAsync<ToolException>(async () =>
            await host.Tool("tests_fail").InvokeAsync(Args("""{"message":"the disk is full"}"""), Guard));

        Assert.Contains("the disk is full", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Environment_secrets_reach_the_server_and_are_masked_in_what_comes_back()
    {
        var settings = McpServers.Stdio();
        settings["Tools:Mcp:tests:Env:TEST_TOKEN"] = "${secret:MCP_TOKEN}";
        settings["Tools:Mcp:tests:Env:PLAIN"] = "plain value";
        settings["MCP_TOKEN"] = Secret;
        await using var host = await ToolHost.StartAsync(settings, cancellationToken: Guard);

        var env = host.Tool("tests_env");

        Assert.Equal("plain value", await env.InvokeAsync(Args("""{"name":"PLAIN"}"""), Guard));
        // The server got the secret (it answers with it) and the model reads the mask.
        Assert.Equal("***", await env.InvokeAsync(Args("""{"name":"TEST_TOKEN"}"""), Guard));
        Assert.DoesNotContain(Secret, host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stdio_server_that_exits_is_started_again_at_the_next_call()
    {
        await using var host = await ToolHost.StartAsync(McpServers.Stdio(), cancellationToken: Guard);
        var whoami = host.Tool("tests_whoami");
        var first = await whoami.InvokeAsync(Args("{}"), Guard);

        var lost = await Assert.ThrowsAsync<ToolException>(async () => await host.Tool("tests_exit").InvokeAsync(Args("{}"), Guard));
        var second = await whoami.InvokeAsync(Args("{}"), Guard);

        Assert.Contains("'tests'", lost.Message, StringComparison.Ordinal);
        Assert.EndsWith("calls=1", first, StringComparison.Ordinal);
        Assert.EndsWith("calls=1", second, StringComparison.Ordinal);
        Assert.NotEqual(first.Split(' ')[0], second.Split(' ')[0]);
    }

    [Fact]
    public async Task A_server_that_cannot_start_leaves_its_tools_out_and_the_others_work()
    {
        var settings = McpServers.Stdio();
        settings["Tools:Mcp:broken:Command"] = Path.Combine(Path.GetTempPath(), "no-such-mcp-server-" + Guid.NewGuid().ToString("N"));
        await using var host = await ToolHost.StartAsync(settings, cancellationToken: Guard);

        Assert.DoesNotContain(host.Registry.All, t => t.Definition.Name.StartsWith("broken_", StringComparison.Ordinal));
        Assert.Equal("7", await host.Tool("tests_add").InvokeAsync(Args("""{"a":3,"b":4}"""), Guard));
        Assert.Contains(host.Logs.Lines, l => l.EventId.Id == 1101 && l.Message.Contains("MCP server broken", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_streamable_http_server_tools_are_listed_and_called_with_the_configured_headers()
    {
        await using var server = await McpHttpServer.StartAsync(cancellationToken: Guard);
        await using var host = await ToolHost.StartAsync(new Dictionary<string, string?>
        {
            ["Tools:Mcp:remote:Url"] = server.Url.ToString(),
            ["Tools:Mcp:remote:Headers:Authorization"] = "Bearer ${secret:MCP_HTTP_KEY}",
            ["Tools:Mcp:remote:ToolPrefix"] = "web-",
            ["MCP_HTTP_KEY"] = Secret,
        }, cancellationToken: Guard);

        Assert.Equal("42", await host.Tool("web-add").InvokeAsync(Args("""{"a":40,"b":2}"""), Guard));
        Assert.Null(host.Registry.Find("remote_add"));
        Assert.NotEmpty(server.Authorizations);
        Assert.All(server.Authorizations, a => Assert.Equal("Bearer " + Secret, a));
        Assert.DoesNotContain(Secret, host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_was_down_at_start_is_tried_again_when_tools_are_next_listed()
    {
        var port = LoopbackPorts.Next();
        await using var host = await ToolHost.StartAsync(new Dictionary<string, string?>
        {
            ["Tools:Mcp:late:Url"] = $"http://127.0.0.1:{port}/mcp",
            ["Tools:Mcp:late:RetryInterval"] = "00:00:00",
        }, cancellationToken: Guard);
        Assert.DoesNotContain(host.Registry.All, t => t.Definition.Name.StartsWith("late_", StringComparison.Ordinal));
        Assert.Contains(host.Logs.Lines, l => l.EventId.Id == 1101 && l.Message.Contains("MCP server late", StringComparison.Ordinal));

        await using var server = await McpHttpServer.StartAsync(port, Guard);

        // Each listing starts a reconnection in the background when none is running; the tools appear once it is done.
        var guard = Guard;
        while (host.Registry.Find("late_add") is null)
        {
            await Task.Delay(50, guard);
        }

        Assert.Equal("3", await host.Tool("late_add").InvokeAsync(Args("""{"a":1,"b":2}"""), Guard));
    }

    [Fact]
    public async Task Bad_server_declarations_stop_the_silo_at_start_naming_each_setting()
    {
        await using var host = await ToolHost.StartAsync(new Dictionary<string, string?>
        {
            ["Tools:Mcp:both:Command"] = "x",
            ["Tools:Mcp:both:Url"] = "http://127.0.0.1:9/mcp",
            ["Tools:Mcp:cmdline:Command"] = "x",
            ["Tools:Mcp:cmdline:Args:0"] = "--token=${secret:T}",
            ["Tools:Mcp:nokey:Url"] = "http://127.0.0.1:9/mcp",
            ["Tools:Mcp:nokey:Headers:Authorization"] = "Bearer ${secret:NOT_SET}",
        }, start: false, cancellationToken: Guard);

        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<McpServersOptions>>().Value);

        Assert.Contains(error.Failures, f => f.StartsWith("Tools:Mcp:both: set either Command", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Tools:Mcp:cmdline:Args: secrets go in Env", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f == "Tools:Mcp:nokey:Headers:Authorization names the secret 'NOT_SET', which configuration does not hold.");
    }

    [Fact]
    public void Names_the_model_cannot_take_are_made_safe() =>
        Assert.Equal("srv_read_file_v2", McpServer.ModelName("srv_read.file v2"));

}
