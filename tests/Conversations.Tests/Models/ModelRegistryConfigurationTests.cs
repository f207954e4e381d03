using Conversations.Grains.Abstractions.Models;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Models.Demo;
using Conversations.Silo.Models;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.Configuration;

namespace Conversations.Tests.Models;

/// <summary>The model registry built from configuration: entries, the default, pass-through names and start-up errors.</summary>
public sealed class ModelRegistryConfigurationTests
{
    private static CancellationToken Guard => TestContext.Current.CancellationToken;

    [Fact]
    public void Every_invalid_setting_is_named_at_once_and_no_key_is_printed()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Models:bad-url:BaseUrl"] = "not a url",
            ["Models:bad-url:ApiKey"] = "sk-bad-url-SECRET",
            ["Models:bad-kind:Kind"] = "anthropic",
            ["Models:bad-kind:BaseUrl"] = "http://127.0.0.1:1/v1",
            ["Models:bad-window:BaseUrl"] = "http://127.0.0.1:1/v1",
            ["Models:bad-window:ContextWindow"] = "-1",
            ["Models:bad-stream:BaseUrl"] = "http://127.0.0.1:1/v1",
            ["Models:bad-stream:Streaming"] = "sometimes",
            ["Models:no-url:Kind"] = "compatible",
            ["Models:no-key:Kind"] = "openai",
            ["Models:creds:BaseUrl"] = "http://user:sk-creds-SECRET@127.0.0.1:1/v1",
            ["DefaultModel"] = "nope",
        };

        var error = Assert.Throws<InvalidOperationException>(() => Build(settings));

        Assert.Contains("Models:bad-url:BaseUrl", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:bad-kind:Kind", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:bad-window:ContextWindow", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:bad-stream:Streaming", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:no-url:BaseUrl is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:no-key:ApiKey is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:creds:BaseUrl must not carry credentials", error.Message, StringComparison.Ordinal);
        Assert.Contains("DefaultModel: no model is named 'nope'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Entries_sit_beside_the_openai_endpoint_and_default_model_chooses_among_them()
    {
        var registry = Build(new Dictionary<string, string?>
        {
            ["OPENAI_BASE_URL"] = "http://127.0.0.1:1/v1",
            ["OPENAI_MODEL"] = "env-model",
            ["OpenAI:NonStreamingModels"] = "env-batch",
            ["Models:azure-gpt:BaseUrl"] = "https://contoso.openai.azure.com",
            ["Models:azure-gpt:ApiKey"] = "azure-key",
            ["Models:azure-gpt:Deployment"] = "gpt-4o-prod",
            ["Models:local:BaseUrl"] = "http://127.0.0.1:2/v1",
            ["Models:local:ContextWindow"] = "4096",
            ["DefaultModel"] = "local",
        });

        Assert.Equal("local", registry.DefaultModel);
        Assert.Equal(["local", "azure-gpt", "env-batch", "env-model"], registry.Models.Select(m => m.Name));
        Assert.Equal(ModelKinds.Azure, registry.Find("azure-gpt")!.Kind);
        Assert.Equal("gpt-4o-prod", registry.Find("azure-gpt")!.Model.Name);
        Assert.Equal("https://contoso.openai.azure.com/", registry.Find("azure-gpt")!.Endpoint);
        Assert.Equal(ModelKinds.Compatible, registry.Find("local")!.Kind);
        Assert.Equal(4096, registry.Find("local")!.ContextWindow);
        Assert.False(registry.Find("env-batch")!.Model.SupportsStreaming);
        Assert.True(registry.Find("env-model")!.Model.SupportsStreaming);
        Assert.False(registry.IsDemo);
    }

    [Fact]
    public async Task A_name_that_is_not_registered_is_asked_of_the_default_endpoint_by_that_id()
    {
        await using var server = await FakeOpenAiServer.StartAsync(Guard);
        server.Enqueue(ScriptedResponse.Text("ok"));
        var registry = Build(new Dictionary<string, string?>
        {
            ["Models:main:BaseUrl"] = server.BaseUrl.ToString(),
            ["Models:main:Model"] = "main-upstream",
            ["Models:main:MaxRetries"] = "0",
        });

        var model = registry.Resolve("some-other-id");
        await foreach (var update in model.StreamAsync(new ModelRequest(null, [new ThreadMessage("msg_1", 1, MessageRoles.User, "Hi", DateTimeOffset.UnixEpoch)], []), Guard))
        {
            Assert.NotNull(update);
        }

        Assert.Equal("main", registry.DefaultModel);
        Assert.Equal("main-upstream", registry.Resolve(null).Name);
        Assert.Same(model, registry.Resolve("some-other-id"));
        Assert.Equal("some-other-id", Assert.Single(server.Requests).Model);
        Assert.Null(registry.Find("some-other-id"));
    }

    [Fact]
    public void Nothing_configured_is_the_demo_model()
    {
        var registry = Build(new Dictionary<string, string?>());

        Assert.True(registry.IsDemo);
        Assert.Equal(DemoChatModel.ModelName, registry.DefaultModel);
        Assert.Equal(ModelKinds.Demo, Assert.Single(registry.Models).Kind);
        Assert.Same(registry.Resolve(null), registry.Resolve("anything"));
    }

    private static ModelRegistry Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return ModelRegistryConfiguration.Build(configuration, ModelSelection.FromConfiguration(configuration), () => new DemoChatModel(TimeProvider.System));
    }
}
