using System.ClientModel;
using System.Text;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using OpenAI;
using OpenAI.Chat;

namespace Conversations.Tests.Compat.OpenAi;

/// <summary>The official OpenAI .NET SDK, pointed at our <c>/v1</c>, as an unmodified client.</summary>
public sealed class OpenAiSdkTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static ChatClient SdkClient(GatewayApp app) => new(
        "fake-model",
        new ApiKeyCredential("sk-anything"),
        new OpenAIClientOptions { Endpoint = new Uri(app.Client.BaseAddress!, "v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });

    [Fact]
    public async Task Sdk_streams_a_reply_whose_run_made_a_server_side_tool_call()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_calc", "calculate", "{\"expression\":", "\"(2+3)^2\"}")),
            ScriptedResponse.Text("The answer ", "is 25."));
        await using var app = GatewayApp.WithModel(model);
        var client = SdkClient(app);

        var text = new StringBuilder();
        var toolNames = new List<string>();
        var arguments = new StringBuilder();
        ChatFinishReason? finishReason = null;
        ChatTokenUsage? usage = null;
        var options = new ChatCompletionOptions();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("What is (2+3)^2?")], options, Guard))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            foreach (var call in update.ToolCallUpdates)
            {
                if (call.FunctionName is not null)
                {
                    toolNames.Add(call.FunctionName);
                }

                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finishReason ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("The answer is 25.", text.ToString());
        Assert.Equal(["calculate"], toolNames);
        Assert.Equal("{\"expression\":\"(2+3)^2\"}", arguments.ToString());
        Assert.Equal(ChatFinishReason.Stop, finishReason);
        Assert.NotNull(usage);
        Assert.True(usage.TotalTokenCount > 0);
        Assert.Equal("25", model.Requests[1].Messages.Single(m => m!["role"]!.GetValue<string>() == "tool")!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Sdk_gets_a_whole_completion_without_streaming()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_t", "calculate", "{\"expression\":\"6*7\"}")),
            ScriptedResponse.Text("42."));
        await using var app = GatewayApp.WithModel(model);
        var client = SdkClient(app);

        ClientResult<ChatCompletion> result = await client.CompleteChatAsync([new UserChatMessage("6*7?")], cancellationToken: Guard);
        var completion = result.Value;

        Assert.Equal("42.", completion.Content.Single().Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal("calculate", completion.ToolCalls.Single().FunctionName);
        Assert.Equal("fake-model", completion.Model);
        Assert.StartsWith("thread_", result.GetRawResponse().Headers.TryGetValue("X-Thread-Id", out var threadId) ? threadId : "");
    }

    [Fact]
    public async Task Sdk_lists_the_default_model()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        await using var app = GatewayApp.WithModel(model);
        var models = new OpenAI.Models.OpenAIModelClient(new ApiKeyCredential("sk-anything"), new OpenAIClientOptions { Endpoint = new Uri(app.Client.BaseAddress!, "v1") });

        var list = await models.GetModelsAsync(Guard);

        Assert.Contains(list.Value, m => m.Id == "fake-model");
    }
}
