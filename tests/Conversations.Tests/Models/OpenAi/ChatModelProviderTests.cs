using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Models.OpenAi;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Models.OpenAi;

public sealed class ChatModelProviderTests
{
    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("default-model")]
    public void Default_model_resolves_for_no_name_and_its_own_name(string? name)
    {
        var provider = ChatModelProvider.ForOpenAi(new OpenAiModelOptions { Model = "default-model", BaseUrl = new Uri("http://127.0.0.1:1/v1/") });

        var model = provider.Resolve(name);

        Assert.Equal("default-model", provider.DefaultModel);
        Assert.Same(provider.Resolve(null), model);
    }

    [Fact]
    public void Other_model_is_created_once_and_reused()
    {
        var created = 0;
        var provider = new ChatModelProvider(new NamedModel("default-model"), name =>
        {
            created++;
            return new NamedModel(name);
        });

        var first = provider.Resolve("other");
        var second = provider.Resolve("other");

        Assert.Same(first, second);
        Assert.Equal("other", first.Name);
        Assert.Equal(1, created);
    }

    [Fact]
    public async Task Other_model_calls_the_same_endpoint_with_its_name()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("ok"));
        var provider = ChatModelProvider.ForOpenAi(new OpenAiModelOptions { Model = "default-model", BaseUrl = server.BaseUrl, MaxRetries = 0 });

        await foreach (var update in provider.Resolve("gpt-other").StreamAsync(
            new ModelRequest(null, [new ThreadMessage("msg_1", 1, MessageRoles.User, "Hi", DateTimeOffset.UnixEpoch)], []),
            TestToken))
        {
            Assert.NotNull(update);
        }

        Assert.Equal("gpt-other", Assert.Single(server.Requests).Model);
    }

    private sealed class NamedModel(string name) : IChatModel
    {
        public string Name => name;

        public bool SupportsStreaming => true;

        public IAsyncEnumerable<ModelUpdate> StreamAsync(ModelRequest request, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();
    }
}
