using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace Conversations.Tests.Fakes;

/// <summary>The fake itself: wire shapes other tests rely on.</summary>
public sealed class FakeOpenAiServerTests
{
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Stream_has_role_chunk_first_and_usage_only_when_asked()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("a", "b"), ScriptedResponse.Text("a", "b").WithUsage(5, 2));
        using var http = new HttpClient();

        var withoutUsage = await PostStreamAsync(http, server, new JsonObject { ["stream"] = true });
        var withUsage = await PostStreamAsync(http, server, new JsonObject { ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true } });

        Assert.Equal("[DONE]", withoutUsage[^1]);
        var chunks = withoutUsage[..^1].Select(data => JsonNode.Parse(data)!).ToList();
        Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        Assert.Equal("stop", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.All(chunks, chunk => Assert.Null(chunk["usage"]));

        var usage = JsonNode.Parse(withUsage[^2])!;
        Assert.Empty(usage["choices"]!.AsArray());
        Assert.Equal(7, usage["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Tool_call_header_chunk_then_argument_only_chunks()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "f", "{\"a\":", "1}")));
        using var http = new HttpClient();

        var data = await PostStreamAsync(http, server, new JsonObject { ["stream"] = true });

        var calls = data[..^1].Select(d => JsonNode.Parse(d)!["choices"]![0]!["delta"]!["tool_calls"]?[0]).OfType<JsonNode>().ToList();
        Assert.Equal(3, calls.Count);
        Assert.Equal("call_1", calls[0]["id"]!.GetValue<string>());
        Assert.Equal("function", calls[0]["type"]!.GetValue<string>());
        Assert.Equal("", calls[0]["function"]!["arguments"]!.GetValue<string>());
        Assert.All(calls.Skip(1), call => Assert.Null(call["id"]));
        Assert.Equal("{\"a\":1}", string.Concat(calls.Skip(1).Select(call => call["function"]!["arguments"]!.GetValue<string>())));
    }

    [Fact]
    public async Task Non_streaming_request_gets_a_whole_completion()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Hel", "lo").WithToolCalls(new ScriptedToolCall("call_1", "f", "{}")).WithUsage(3, 4));
        var client = new ChatClient("fake-model", new System.ClientModel.ApiKeyCredential("k"), new OpenAIClientOptions { Endpoint = server.BaseUrl });

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("Hi")], cancellationToken: TestToken);

        Assert.Equal("Hello", completion.Content[0].Text);
        Assert.Equal("call_1", Assert.Single(completion.ToolCalls).Id);
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        Assert.Equal(7, completion.Usage.TotalTokenCount);
        Assert.False(Assert.Single(server.Requests).Stream);
    }

    [Fact]
    public async Task Empty_script_answers_500_saying_so()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        using var http = new HttpClient();

        using var response = await http.PostAsJsonAsync(new Uri(server.BaseUrl, "chat/completions"), new JsonObject { ["stream"] = true }, TestToken);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Contains("no scripted response left", await response.Content.ReadAsStringAsync(TestToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_are_listed()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Models = ["m1", "m2"];
        using var http = new HttpClient();

        var list = await http.GetFromJsonAsync<JsonObject>(new Uri(server.BaseUrl, "models"), TestToken);

        Assert.Equal(["m1", "m2"], list!["data"]!.AsArray().Select(model => model!["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task WaitForRequestAsync_completes_when_that_request_arrives()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("1"), ScriptedResponse.Text("2"));
        using var http = new HttpClient();

        var second = server.WaitForRequestAsync(2, TestToken);
        await PostStreamAsync(http, server, new JsonObject { ["stream"] = true, ["n"] = 1 });
        Assert.False(second.IsCompleted);
        await PostStreamAsync(http, server, new JsonObject { ["stream"] = true, ["n"] = 2 });

        var request = await second.WaitAsync(TimeSpan.FromSeconds(10), TestToken);
        Assert.Equal(2, request.Body!["n"]!.GetValue<int>());
        Assert.False(await request.Aborted.WaitAsync(TimeSpan.FromSeconds(10), TestToken));
        Assert.Equal(0, server.PendingResponses);
    }

    private static async Task<List<string>> PostStreamAsync(HttpClient http, FakeOpenAiServer server, JsonObject body)
    {
        body["model"] ??= "fake-model";
        body["messages"] ??= new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" });
        using var response = await http.PostAsJsonAsync(new Uri(server.BaseUrl, "chat/completions"), body, TestToken);
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var stream = await response.Content.ReadAsStreamAsync(TestToken);
        var data = new List<string>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(TestToken))
        {
            data.Add(item.Data);
        }

        return data;
    }
}
