using System.Net;
using System.Text.Json;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Gateway;

/// <summary>Client tools: the run says run.requires_action, waits for a client's output, and goes on with it.</summary>
public sealed class ClientToolTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static Dictionary<string, string?> ClientTool(string? timeout = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Agents:default:ClientTools:0:Name"] = "get_location",
            ["Agents:default:ClientTools:0:Description"] = "Where the user is, from their device.",
            ["Agents:default:ClientTools:0:Parameters"] = """{"type":"object","properties":{"precision":{"type":"string"}}}""",
        };
        if (timeout is not null)
        {
            settings["Runs:ClientToolTimeout"] = timeout;
        }

        return settings;
    }

    [Fact]
    public async Task A_client_tool_call_waits_for_an_output_submitted_by_another_client_and_the_run_goes_on_with_it()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_loc", "get_location", """{"precision":"city"}""")),
            ScriptedResponse.Text("You are in Lisbon."));
        await using var app = GatewayApp.WithModel(model, ClientTool());
        var client = app.Client;
        var other = app.CreateClient();
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var stream = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "Where am I?", stream = true }, Guard);
        await using var events = stream.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        var before = new List<SseEvent>();
        while (await events.MoveNextAsync() && events.Current.Type != "run.requires_action")
        {
            before.Add(events.Current);
        }

        var requires = events.Current;
        var runId = requires.Str("runId")!;
        var call = requires.Data.GetProperty("calls")[0];
        using var unknown = await other.PostAsJsonAsync($"/threads/{threadId}/runs/{runId}/tool-outputs", new { toolOutputs = new[] { new { toolCallId = "call_other", output = "x" } } }, Guard);
        using var empty = await other.PostAsJsonAsync($"/threads/{threadId}/runs/{runId}/tool-outputs", new { toolOutputs = Array.Empty<object>() }, Guard);
        using var submitted = await other.PostAsJsonAsync($"/threads/{threadId}/runs/{runId}/tool-outputs", new { toolOutputs = new[] { new { toolCallId = "call_loc", output = "Lisbon, Portugal" } } }, Guard);
        var after = new List<SseEvent>();
        while (await events.MoveNextAsync())
        {
            after.Add(events.Current);
            if (SseEvents.IsRunEnd(events.Current))
            {
                break;
            }
        }

        using var again = await other.PostAsJsonAsync($"/threads/{threadId}/runs/{runId}/tool-outputs", new { toolOutputs = new[] { new { toolCallId = "call_loc", output = "Paris" } } }, Guard);

        Assert.Equal(("call_loc", "get_location", """{"precision":"city"}"""), (call.GetProperty("id").GetString(), call.GetProperty("name").GetString(), call.GetProperty("arguments").GetString()));
        Assert.True(requires.Data.TryGetProperty("deadline", out _));
        Assert.DoesNotContain(before, e => e.Type is "tool_call.completed" or "tool_call.failed");
        Assert.Equal(HttpStatusCode.Conflict, unknown.StatusCode);
        Assert.Equal("call_other", (await unknown.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("toolCallIds")[0].GetString());
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Equal(HttpStatusCode.OK, submitted.StatusCode);
        var completed = Assert.Single(after, e => e.Type == "tool_call.completed");
        Assert.Equal(("call_loc", "Lisbon, Portugal"), (completed.Str("callId"), completed.Str("result")));
        Assert.Equal("run.completed", after[^1].Type);
        Assert.Equal("You are in Lisbon.", string.Concat(after.Where(e => e.Type == "text.delta").Select(e => e.Str("text"))));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode); // the run does not wait any more
        // The model was told of the tool, and read the client's output as its result.
        Assert.Contains(model.Requests[0].Tools, t => t?["function"]?["name"]?.ToString() == "get_location");
        Assert.Contains(model.Requests[1].Messages, m => m?["role"]?.ToString() == "tool" && m["content"]?.ToString() == "Lisbon, Portugal");
        var messages = (await client.GetFromJsonAsync<JsonElement>($"/threads/{threadId}/messages", Guard)).GetProperty("data");
        Assert.Equal(["Where am I?", "", "Lisbon, Portugal", "You are in Lisbon."], messages.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task A_client_tool_call_without_an_output_in_time_fails_and_the_model_is_told()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_loc", "get_location", "{}")),
            ScriptedResponse.Text("I could not find out where you are."));
        await using var app = GatewayApp.WithModel(model, ClientTool(timeout: "00:00:00.300"));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var stream = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "Where am I?", stream = true }, Guard);
        var events = await stream.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);

        Assert.Contains(events, e => e.Type == "run.requires_action");
        var failed = Assert.Single(events, e => e.Type == "tool_call.failed");
        Assert.Contains("No client submitted the output of 'get_location'", failed.Str("error"), StringComparison.Ordinal);
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Contains(model.Requests[1].Messages, m => m?["role"]?.ToString() == "tool" && m["content"]?.ToString()?.Contains("No client submitted", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Client_tools_can_be_declared_through_the_agents_api_and_bad_ones_are_named()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.ToolCalls(new ScriptedToolCall("call_pick", "pick_file", "{}")), ScriptedResponse.Text("Got it."));
        await using var app = GatewayApp.WithModel(model);
        var client = app.Client;
        using var created = await client.PostAsJsonAsync("/agents", new
        {
            name = "picker",
            clientTools = new[] { new { name = "pick_file", description = "Lets the user pick a file.", parameters = new { type = "object", properties = new { } } } },
        }, Guard);
        using var bad = await client.PostAsJsonAsync("/agents", new { name = "bad", clientTools = new object[] { new { name = "calculate" }, new { name = "no spaces allowed" } } }, Guard);
        var agent = await client.GetFromJsonAsync<JsonElement>("/agents/picker", Guard);
        var threadId = await client.CreateThreadAsync(new { agent = "picker" }, Guard);
        using var stream = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = "Pick one", stream = true }, Guard);
        await using var events = stream.ReadEventsAsync(Guard).GetAsyncEnumerator(Guard);
        while (await events.MoveNextAsync() && events.Current.Type != "run.requires_action")
        {
        }

        using var submitted = await client.PostAsJsonAsync(
            $"/threads/{threadId}/runs/{events.Current.Str("runId")}/tool-outputs", new { toolOutputs = new[] { new { toolCallId = "call_pick", output = "report.pdf" } } }, Guard);
        var rest = new List<SseEvent>();
        while (await events.MoveNextAsync() && !SseEvents.IsRunEnd(events.Current))
        {
            rest.Add(events.Current);
        }

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("pick_file", agent.GetProperty("clientTools")[0].GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = (await bad.Content.ReadFromJsonAsync<JsonElement>(Guard)).GetProperty("errors");
        Assert.True(errors.TryGetProperty("clientTools[0].name", out _));
        Assert.True(errors.TryGetProperty("clientTools[1].name", out _));
        Assert.Equal(HttpStatusCode.OK, submitted.StatusCode);
        Assert.Equal("report.pdf", Assert.Single(rest, e => e.Type == "tool_call.completed").Str("result"));
    }
}
