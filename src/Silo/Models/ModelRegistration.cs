using Conversations.Grains.Models;
using Conversations.Grains.Models.Demo;
using Conversations.Grains.Models.OpenAi;

namespace Conversations.Silo.Models;

/// <summary>Which model endpoint the silo uses, decided once from configuration.</summary>
/// <param name="IsDemo">True when no endpoint is configured and the built-in demo model answers.</param>
/// <param name="Endpoint">The endpoint's base URL, for the log (never the key).</param>
/// <param name="Options">The endpoint settings; null for the demo model.</param>
public sealed record ModelSelection(bool IsDemo, string Endpoint, OpenAiModelOptions? Options)
{
    /// <summary>
    /// Model names on the endpoint that cannot stream (<c>OpenAI:NonStreamingModels</c>: a list, or one comma-separated
    /// value); they resolve with <see cref="IChatModel.SupportsStreaming"/> false.
    /// </summary>
    public IReadOnlySet<string> NonStreamingModels { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    public const string DefaultModelName = "gpt-4o-mini";

    /// <summary>
    /// Reads the OpenAI ecosystem's variables (<c>OPENAI_API_KEY</c>, <c>OPENAI_BASE_URL</c>, <c>OPENAI_MODEL</c>) and
    /// the <c>OpenAI</c> section of configuration; the variables win. No key and no base URL: the demo model. Azure
    /// OpenAI is chosen by the base URL's host or by <c>OpenAI:Provider=azure</c> (see <see cref="OpenAiModelOptions.IsAzure"/>);
    /// there, no key means Entra ID.
    /// </summary>
    public static ModelSelection FromConfiguration(IConfiguration configuration)
    {
        var section = configuration.GetSection("OpenAI");
        var apiKey = NullIfEmpty(configuration["OPENAI_API_KEY"]) ?? NullIfEmpty(section["ApiKey"]);
        var baseUrl = NullIfEmpty(configuration["OPENAI_BASE_URL"]) ?? NullIfEmpty(section["BaseUrl"]);
        var model = NullIfEmpty(configuration["OPENAI_MODEL"]) ?? NullIfEmpty(section["Model"]) ?? DefaultModelName;
        var provider = NullIfEmpty(section["Provider"]) switch
        {
            null => (OpenAiProvider?)null,
            var value when value.Equals("azure", StringComparison.OrdinalIgnoreCase) => OpenAiProvider.Azure,
            var value when value.Equals("openai", StringComparison.OrdinalIgnoreCase) => OpenAiProvider.OpenAi,
            var value => throw new InvalidOperationException($"OpenAI:Provider must be 'azure' or 'openai' (or unset: decided by the base URL's host); got '{value}'."),
        };
        if (provider == OpenAiProvider.Azure && baseUrl is null)
        {
            throw new InvalidOperationException(
                "OpenAI:Provider=azure needs OPENAI_BASE_URL (or OpenAI:BaseUrl): the resource URL https://<resource>.openai.azure.com or its v1 endpoint …/openai/v1.");
        }

        if (apiKey is null && baseUrl is null)
        {
            return new ModelSelection(true, "built-in demo model", null);
        }

        Uri? endpoint = null;
        if (baseUrl is not null && (!Uri.TryCreate(baseUrl, UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("http" or "https")))
        {
            throw new InvalidOperationException($"OPENAI_BASE_URL (or OpenAI:BaseUrl) must be an absolute http(s) URL; got '{baseUrl}'.");
        }

        var options = new OpenAiModelOptions
        {
            ApiKey = apiKey,
            BaseUrl = endpoint,
            Model = model,
            SupportsStreaming = section.GetValue("SupportsStreaming", true),
            MaxRetries = section.GetValue("MaxRetries", 2),
            NetworkTimeout = section.GetValue("NetworkTimeout", TimeSpan.FromSeconds(100)),
            Provider = provider,
            AzureApiVersion = NullIfEmpty(section["AzureApiVersion"]) ?? OpenAiModelOptions.DefaultAzureApiVersion,
        };
        var described = endpoint?.GetLeftPart(UriPartial.Path) ?? "https://api.openai.com/v1";
        if (options.IsAzure)
        {
            if (apiKey is null && endpoint!.Scheme != Uri.UriSchemeHttps)
            {
                throw new InvalidOperationException(
                    $"Azure OpenAI without OPENAI_API_KEY uses Entra ID, whose tokens are only sent over https: OPENAI_BASE_URL (or OpenAI:BaseUrl) must be https; got '{baseUrl}'.");
            }

            described = $"{described} (Azure OpenAI, {(apiKey is null ? "Entra ID" : "api-key")})";
        }

        return new ModelSelection(false, described, options)
        {
            NonStreamingModels = ReadList(section.GetSection("NonStreamingModels")),
        };
    }

    /// <summary>The endpoint's options for the model named <paramref name="name"/>.</summary>
    public OpenAiModelOptions OptionsFor(string name)
    {
        var options = Options ?? throw new InvalidOperationException("The demo model has no endpoint options.");
        return options with { Model = name, SupportsStreaming = options.SupportsStreaming && !NonStreamingModels.Contains(name) };
    }

    private static HashSet<string> ReadList(IConfigurationSection section)
    {
        var values = section.Value is { } single ? single.Split(',') : section.GetChildren().Select(child => child.Value ?? string.Empty);
        return new HashSet<string>(values.Select(value => value.Trim()).Where(value => value.Length > 0), StringComparer.Ordinal);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

public static class ModelRegistration
{
    /// <summary>
    /// The model registry (<see cref="ModelRegistryConfiguration"/>): <c>Models:{name}</c> entries, the <c>OPENAI_*</c>
    /// endpoint, or the demo model; it is also the <see cref="IChatModelProvider"/> runs resolve models with.
    /// </summary>
    public static IServiceCollection AddChatModels(this IServiceCollection services)
    {
        services.AddSingleton(sp => ModelSelection.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        services.AddSingleton(sp =>
        {
            var configuration = sp.GetRequiredService<IConfiguration>();
            return ModelRegistryConfiguration.Build(
                configuration,
                sp.GetRequiredService<ModelSelection>(),
                () => new DemoChatModel(sp.GetRequiredService<TimeProvider>(), configuration.GetValue<TimeSpan?>("DemoModel:TokenDelay")),
                sp.GetService<ILogger<OpenAiChatModel>>());
        });
        services.AddSingleton<IChatModelProvider>(sp => sp.GetRequiredService<ModelRegistry>());
        return services;
    }
}
