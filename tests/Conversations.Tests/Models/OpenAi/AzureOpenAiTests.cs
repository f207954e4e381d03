using System.ClientModel.Primitives;
using Azure.Core;
using Azure.Identity;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Models.OpenAi;
using Conversations.Silo.Models;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Conversations.Tests.Models.OpenAi;

/// <summary>
/// Azure OpenAI through <see cref="OpenAiChatModel"/> and <c>Azure.AI.OpenAI</c>'s <c>AzureOpenAIClient</c>: the requests reach a real HTTP server (the fake) in Azure's
/// shape — its routes, <c>api-version</c>, the <c>api-key</c> header or an Entra ID token — and the streamed answer
/// comes back; other endpoints keep OpenAI's bearer key.
/// </summary>
public sealed class AzureOpenAiTests
{
    private const string AzureKey = "azure-key-SECRET";

    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Resource_url_goes_to_the_deployment_route_with_api_version_and_the_api_key_header()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("Hel", "lo from ", "Azure.").WithUsage(9, 4));
        var model = new OpenAiChatModel(AzureOptions(ResourceUrl(server), "gpt-4o-deployment"));

        var updates = await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal(["Hel", "lo from ", "Azure."], updates.OfType<ModelTextDelta>().Select(delta => delta.Text));
        var finished = Assert.IsType<ModelFinished>(updates[^1]);
        Assert.Equal("stop", finished.FinishReason);
        Assert.Equal(new Usage(9, 4, 13), finished.Usage);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/openai/deployments/gpt-4o-deployment/chat/completions", request.Path);
        Assert.Equal($"?api-version={OpenAiModelOptions.DefaultAzureApiVersion}", request.Query);
        Assert.Equal(AzureKey, request.ApiKey);
        Assert.Null(request.Authorization);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
    }

    [Fact]
    public async Task V1_endpoint_names_the_same_resource_and_goes_to_the_deployment_route()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("v1 ", "works"));
        var model = new OpenAiChatModel(AzureOptions(new Uri(ResourceUrl(server), "openai/v1"), "my-deployment"));

        var updates = await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal("v1 works", string.Concat(updates.OfType<ModelTextDelta>().Select(delta => delta.Text)));
        var request = Assert.Single(server.Requests);
        Assert.Equal("/openai/deployments/my-deployment/chat/completions", request.Path);
        Assert.Equal($"?api-version={OpenAiModelOptions.DefaultAzureApiVersion}", request.Query);
        Assert.Equal(AzureKey, request.ApiKey);
        Assert.Null(request.Authorization);
    }

    [Fact]
    public async Task Configured_api_version_is_sent()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("ok"));
        var model = new OpenAiChatModel(AzureOptions(ResourceUrl(server), "d") with { AzureApiVersion = "2025-04-01-preview" });

        await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal("?api-version=2025-04-01-preview", Assert.Single(server.Requests).Query);
    }

    [Fact]
    public async Task Tool_calls_stream_back_through_the_azure_route()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "get_weather", "{\"ci", "ty\": \"Paris\"}")));
        var model = new OpenAiChatModel(AzureOptions(ResourceUrl(server), "d"));

        var updates = await CollectAsync(model.StreamAsync(Ask("Weather?"), TestToken));

        var deltas = updates.OfType<ModelToolCallDelta>().ToList();
        Assert.Equal("call_1", deltas[0].Id);
        Assert.Equal("get_weather", deltas[0].Name);
        Assert.Equal("{\"city\": \"Paris\"}", string.Concat(deltas.Select(delta => delta.ArgumentsDelta)));
        Assert.Equal("tool_calls", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
        Assert.Equal("/openai/deployments/d/chat/completions", Assert.Single(server.Requests).Path);
    }

    [Fact]
    public async Task Each_model_name_is_its_own_deployment_route()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("a"), ScriptedResponse.Text("b"));
        var provider = ChatModelProvider.ForOpenAi(AzureOptions(ResourceUrl(server), "default-deployment"));

        await CollectAsync(provider.Resolve(null).StreamAsync(Ask("Hi"), TestToken));
        await CollectAsync(provider.Resolve("other deployment").StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal(
            ["/openai/deployments/default-deployment/chat/completions", "/openai/deployments/other%20deployment/chat/completions"],
            server.Requests.Select(request => request.Path));
    }

    [Fact]
    public async Task Without_a_key_an_Entra_ID_token_for_cognitive_services_is_sent_as_bearer()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("signed in"));
        var credential = new FakeTokenProvider("entra-token-123");
        // Tokens only go over https: the resource's real-looking https URL, carried to the fake on loopback.
        var model = new OpenAiChatModel(new OpenAiModelOptions
        {
            BaseUrl = new Uri("https://my-resource.openai.azure.com/"),
            Model = "d",
            AzureCredential = credential,
            MaxRetries = 0,
            Transport = ToLoopback(server),
        });

        var updates = await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal("signed in", Assert.IsType<ModelTextDelta>(updates[0]).Text);
        var request = Assert.Single(server.Requests);
        Assert.Equal("Bearer entra-token-123", request.Authorization);
        Assert.Null(request.ApiKey);
        Assert.Equal("/openai/deployments/d/chat/completions", request.Path);
        Assert.Contains("https://cognitiveservices.azure.com/.default", credential.RequestedScopes);
    }

    [Fact]
    public async Task No_Entra_ID_token_is_model_unavailable_and_nothing_is_sent()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        var credential = new FakeTokenProvider(failure: new CredentialUnavailableException("no identity on this machine"));
        var model = new OpenAiChatModel(AzureOptions(new Uri("https://my-resource.openai.azure.com/openai/v1"), "d") with
        {
            ApiKey = null,
            AzureCredential = credential,
            Transport = ToLoopback(server),
        });

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal("model_unavailable", error.Code);
        Assert.Contains("Entra ID", error.Message, StringComparison.Ordinal);
        Assert.IsType<CredentialUnavailableException>(error.InnerException);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public void Entra_ID_over_plain_http_is_refused_at_construction()
    {
        var error = Assert.Throws<ArgumentException>(() => new OpenAiChatModel(
            AzureOptions(new Uri("http://127.0.0.1:9/"), "d") with { ApiKey = null, AzureCredential = new FakeTokenProvider("t") }));

        Assert.Contains("https", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Azure_error_status_is_a_model_error_without_the_key()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Error(401, $"Access denied due to invalid subscription key {AzureKey}."));
        var model = new OpenAiChatModel(AzureOptions(ResourceUrl(server), "d"));

        var error = await Assert.ThrowsAsync<ModelException>(() => CollectAsync(model.StreamAsync(Ask("Hi"), TestToken)));

        Assert.Equal("model_error", error.Code);
        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(AzureKey, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Non_azure_endpoint_keeps_the_bearer_key_and_the_plain_route()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("plain"));
        var model = new OpenAiChatModel(new OpenAiModelOptions { ApiKey = "sk-plain", BaseUrl = server.BaseUrl, Model = "gpt-x", MaxRetries = 0 });

        await CollectAsync(model.StreamAsync(Ask("Hi"), TestToken));

        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal("Bearer sk-plain", request.Authorization);
        Assert.Null(request.ApiKey);
        Assert.Equal("", request.Query);
    }

    [Fact]
    public async Task Configuration_with_provider_azure_registers_a_model_that_speaks_azure()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("configured"));
        var models = ModelsFrom(new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = AzureKey,
            ["OPENAI_BASE_URL"] = ResourceUrl(server).ToString(),
            ["OPENAI_MODEL"] = "prod-deployment",
            ["OpenAI:Provider"] = "Azure",
            ["OpenAI:AzureApiVersion"] = "2024-06-01",
            ["OpenAI:MaxRetries"] = "0",
        });

        var updates = await CollectAsync(models.Resolve(null).StreamAsync(Ask("Hi"), TestToken));

        Assert.Equal("configured", Assert.IsType<ModelTextDelta>(updates[0]).Text);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/openai/deployments/prod-deployment/chat/completions", request.Path);
        Assert.Equal("?api-version=2024-06-01", request.Query);
        Assert.Equal(AzureKey, request.ApiKey);
        Assert.Null(request.Authorization);
    }

    [Fact]
    public async Task Configuration_without_provider_keeps_openai_for_a_non_azure_host()
    {
        await using var server = await FakeOpenAiServer.StartAsync(TestToken);
        server.Enqueue(ScriptedResponse.Text("plain"));
        var models = ModelsFrom(new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = "sk-plain",
            ["OPENAI_BASE_URL"] = server.BaseUrl.ToString(),
            ["OpenAI:MaxRetries"] = "0",
        });

        await CollectAsync(models.Resolve(null).StreamAsync(Ask("Hi"), TestToken));

        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal("Bearer sk-plain", request.Authorization);
        Assert.Null(request.ApiKey);
    }

    [Theory]
    [InlineData("https://my-resource.openai.azure.com/", true)]
    [InlineData("https://my-resource.openai.azure.com/openai/v1", true)]
    [InlineData("https://MY-RESOURCE.OpenAI.Azure.com", true)]
    [InlineData("https://my-resource.cognitiveservices.azure.com/", true)]
    [InlineData("https://api.openai.com/v1", false)]
    [InlineData("http://localhost:11434/v1", false)]
    [InlineData("https://openai.azure.com.example.org/v1", false)]
    [InlineData("https://notopenai.azure.com/v1", false)]
    public void The_host_decides_when_no_provider_is_set(string baseUrl, bool azure)
    {
        Assert.Equal(azure, new OpenAiModelOptions { BaseUrl = new Uri(baseUrl), Model = "m" }.IsAzure);
    }

    [Fact]
    public void An_explicit_provider_wins_over_the_host()
    {
        Assert.True(new OpenAiModelOptions { BaseUrl = new Uri("http://127.0.0.1:1/"), Model = "m", Provider = OpenAiProvider.Azure }.IsAzure);
        Assert.False(new OpenAiModelOptions { BaseUrl = new Uri("https://r.openai.azure.com/openai/v1"), Model = "m", Provider = OpenAiProvider.OpenAi }.IsAzure);
        Assert.False(new OpenAiModelOptions { Model = "m" }.IsAzure);
    }

    [Theory]
    [InlineData("https://r.openai.azure.com", "https://r.openai.azure.com/")]
    [InlineData("https://r.openai.azure.com/", "https://r.openai.azure.com/")]
    [InlineData("https://r.openai.azure.com/openai", "https://r.openai.azure.com/")]
    [InlineData("https://r.openai.azure.com/openai/", "https://r.openai.azure.com/")]
    [InlineData("https://r.openai.azure.com/openai/v1", "https://r.openai.azure.com/")]
    [InlineData("https://r.openai.azure.com/openai/v1/", "https://r.openai.azure.com/")]
    [InlineData("https://gateway.example.org/team-a/", "https://gateway.example.org/team-a/")]
    public void Base_url_styles_name_the_resource(string baseUrl, string resource)
    {
        Assert.Equal(new Uri(resource), AzureOpenAiEndpoint.ResourceUrl(new Uri(baseUrl)));
    }

    [Fact]
    public void Api_versions_map_to_service_versions_and_unknown_ones_are_refused()
    {
        Assert.Equal(Azure.AI.OpenAI.AzureOpenAIClientOptions.ServiceVersion.V2024_10_21, AzureOpenAiEndpoint.ServiceVersion("2024-10-21"));
        Assert.Equal(Azure.AI.OpenAI.AzureOpenAIClientOptions.ServiceVersion.V2025_04_01_Preview, AzureOpenAiEndpoint.ServiceVersion("2025-04-01-preview"));
        var error = Assert.Throws<ArgumentException>(() => AzureOpenAiEndpoint.ServiceVersion("2019-01-01"));
        Assert.Contains("2024-10-21", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Selection_reads_the_provider_and_describes_the_azure_endpoint()
    {
        var keyed = Select(new() { ["OPENAI_API_KEY"] = "k", ["OPENAI_BASE_URL"] = "https://r.openai.azure.com/openai/v1" });
        var entra = Select(new() { ["OPENAI_BASE_URL"] = "https://r.openai.azure.com/", ["OPENAI_MODEL"] = "dep" });
        var forced = Select(new() { ["OPENAI_API_KEY"] = "k", ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/", ["OpenAI:Provider"] = "azure" });
        var plain = Select(new() { ["OPENAI_API_KEY"] = "k", ["OPENAI_BASE_URL"] = "https://r.openai.azure.com/openai/v1", ["OpenAI:Provider"] = "OpenAI" });

        Assert.True(keyed.Options!.IsAzure);
        Assert.Contains("Azure OpenAI, api-key", keyed.Endpoint, StringComparison.Ordinal);
        Assert.False(entra.IsDemo);
        Assert.True(entra.Options!.IsAzure);
        Assert.Null(entra.Options.ApiKey);
        Assert.Contains("Azure OpenAI, Entra ID", entra.Endpoint, StringComparison.Ordinal);
        Assert.Equal(OpenAiProvider.Azure, forced.Options!.Provider);
        Assert.Equal(OpenAiModelOptions.DefaultAzureApiVersion, forced.Options.AzureApiVersion);
        Assert.False(plain.Options!.IsAzure);
        Assert.DoesNotContain("Azure", plain.Endpoint, StringComparison.Ordinal);
    }

    [Fact]
    public void Selection_rejects_an_unknown_provider_and_azure_without_a_base_url()
    {
        var unknown = Assert.Throws<InvalidOperationException>(() => Select(new() { ["OPENAI_API_KEY"] = "k", ["OpenAI:Provider"] = "bedrock" }));
        var noUrl = Assert.Throws<InvalidOperationException>(() => Select(new() { ["OPENAI_API_KEY"] = "k", ["OpenAI:Provider"] = "azure" }));

        Assert.Contains("OpenAI:Provider", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("bedrock", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("OPENAI_BASE_URL", noUrl.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Selection_rejects_entra_id_over_plain_http()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Select(new() { ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/", ["OpenAI:Provider"] = "azure" }));

        Assert.Contains("https", error.Message, StringComparison.Ordinal);
        Assert.Contains("OPENAI_API_KEY", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_text_names_the_credential_type_but_never_the_key()
    {
        var options = AzureOptions(new Uri("https://r.openai.azure.com/"), "d") with { AzureCredential = new FakeTokenProvider("t") };

        Assert.DoesNotContain(AzureKey, options.ToString(), StringComparison.Ordinal);
        Assert.Contains("Provider = Azure", options.ToString(), StringComparison.Ordinal);
        Assert.Contains(nameof(FakeTokenProvider), options.ToString(), StringComparison.Ordinal);
    }

    /// <summary>The fake's root, as an Azure resource URL would be given (<c>http://127.0.0.1:{port}/</c>).</summary>
    private static Uri ResourceUrl(FakeOpenAiServer server) => new(server.BaseUrl, "/");

    private static OpenAiModelOptions AzureOptions(Uri baseUrl, string deployment) => new()
    {
        ApiKey = AzureKey,
        BaseUrl = baseUrl,
        Model = deployment,
        Provider = OpenAiProvider.Azure,
        MaxRetries = 0,
        NetworkTimeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>
    /// A transport that sends every request to <paramref name="server"/> on 127.0.0.1 over plain http, whatever its
    /// scheme and host (path and query kept), so nothing leaves the machine.
    /// </summary>
    private static PipelineTransport ToLoopback(FakeOpenAiServer server) =>
        new HttpClientPipelineTransport(new HttpClient(new LoopbackRedirect(server.BaseUrl) { InnerHandler = new SocketsHttpHandler() }));

    private static ModelSelection Select(Dictionary<string, string?> settings) =>
        ModelSelection.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

    private static IChatModelProvider ModelsFrom(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddSingleton(TimeProvider.System);
        services.AddChatModels();
        return services.BuildServiceProvider().GetRequiredService<IChatModelProvider>();
    }

    private static ModelRequest Ask(string text) =>
        new(null, [new ThreadMessage("msg_1", 1, MessageRoles.User, text, DateTimeOffset.UnixEpoch)], []);

    private static async Task<List<ModelUpdate>> CollectAsync(IAsyncEnumerable<ModelUpdate> updates)
    {
        var list = new List<ModelUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }

    private sealed class LoopbackRedirect(Uri target) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>An Entra ID token source that hands out a fixed token (or fails), recording the scopes asked for.</summary>
    private sealed class FakeTokenProvider(string? token = null, Exception? failure = null) : TokenCredential
    {
        private readonly List<string> _scopes = [];

        public IReadOnlyList<string> RequestedScopes
        {
            get
            {
                lock (_scopes)
                {
                    return [.. _scopes];
                }
            }
        }

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            lock (_scopes)
            {
                _scopes.AddRange(requestContext.Scopes);
            }

            if (failure is not null)
            {
                throw failure;
            }

            return new AccessToken(token!, DateTimeOffset.UtcNow.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
