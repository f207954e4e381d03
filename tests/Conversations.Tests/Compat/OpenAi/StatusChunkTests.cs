using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Compat.OpenAi;

/// <summary>Seed 004's agent status chunks on the OpenAI stream: only when the client asks.</summary>
public sealed class StatusChunkTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static ScriptedResponse[] ToolThenText() =>
    [
        ScriptedResponse.ToolCalls(new ScriptedToolCall("call_s", "calculate", "{\"expression\":\"2*21\"}")),
        ScriptedResponse.Text("It is ", "42."),
    ];

    private static bool IsStatus(JsonElement chunk) => chunk.HasChoice() && chunk.Delta().Str("role") == "system";

    [Fact]
    public async Task Stream_status_in_the_body_adds_status_chunks_in_agent_loop_order()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ToolThenText());
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions",
            new { messages = new[] { new { role = "user", content = "2*21" } }, stream = true, stream_status = true },
            cancellationToken: Guard);
        var data = await response.ReadDataLinesAsync(Guard);
        var chunks = data.Chunks();

        var statuses = chunks.Where(IsStatus).ToList();
        Assert.Equal(
            ["starting_generation", "tool_call_detected", "tools_executed", "continuing_generation"],
            statuses.Select(s => s.Delta().GetProperty("metadata").Str("status")));
        Assert.All(statuses, s =>
        {
            Assert.StartsWith("status_", s.Str("id"));
            Assert.Equal("chat.completion.chunk", s.Str("object"));
            Assert.Equal(JsonValueKind.Null, s.Choice().GetProperty("finish_reason").ValueKind);
            Assert.False(s.Delta().TryGetProperty("content", out _));
        });
        Assert.Equal(statuses.Count, statuses.Select(s => s.Str("id")).Distinct().Count());
        var detected = statuses[1].Delta().GetProperty("metadata");
        Assert.Equal("calculate", detected.GetProperty("tool_calls")[0].GetString());
        var executed = statuses[2].Delta().GetProperty("metadata");
        Assert.Equal(1, executed.GetProperty("succeeded").GetInt32());
        var result = executed.GetProperty("tool_results")[0];
        Assert.Equal("call_s", result.Str("tool_call_id"));
        Assert.Equal("42", result.Str("result"));

        // Text chunks carry role "assistant" (seed 004's make_text_chunk), and the stop chunk is seed 004's.
        var textChunks = chunks.Where(c => c.HasChoice() && c.Delta().Str("content") is { Length: > 0 }).ToList();
        Assert.All(textChunks, c => Assert.Equal("assistant", c.Delta().Str("role")));
        Assert.Equal("It is 42.", chunks.Text());
        var stop = chunks.Last(c => c.HasChoice());
        Assert.Equal("stop", stop.Choice().Str("finish_reason"));
        Assert.Equal("assistant", stop.Delta().Str("role"));
        Assert.Equal("[DONE]", data[^1]);
        Assert.All(chunks, c => Assert.Equal(response.Headers.GetValues("X-Thread-Id").Single(), c.Str("thread_id")));
    }

    [Fact]
    public async Task Stream_status_header_adds_status_chunks_too()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ToolThenText());
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions",
            new { messages = new[] { new { role = "user", content = "2*21" } }, stream = true },
            new Dictionary<string, string> { ["X-Stream-Status"] = "true" },
            Guard);
        var chunks = (await response.ReadDataLinesAsync(Guard)).Chunks();

        Assert.Equal(4, chunks.Count(IsStatus));
    }

    [Fact]
    public async Task Without_the_flag_no_system_role_chunk_reaches_a_plain_openai_client()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ToolThenText());
        await using var app = GatewayApp.WithModel(model);

        using var response = await app.Client.PostJsonAsync(
            "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "2*21" } }, stream = true }, cancellationToken: Guard);
        var chunks = (await response.ReadDataLinesAsync(Guard)).Chunks();

        Assert.DoesNotContain(chunks, IsStatus);
        Assert.DoesNotContain(chunks, c => c.Str("id")!.StartsWith("status_", StringComparison.Ordinal));
        Assert.DoesNotContain(chunks, c => c.HasChoice() && c.Delta().TryGetProperty("metadata", out _));
        Assert.Equal("It is 42.", chunks.Text());
    }
}
