using System.Globalization;
using System.Text.RegularExpressions;
using Conversations.Grains.Abstractions.Models;
using Conversations.Grains.Models;
using Conversations.Grains.Models.OpenAi;

namespace Conversations.Silo.Models;

/// <summary>
/// Builds the silo's <see cref="ModelRegistry"/> from configuration: the <c>Models:{name}</c> entries (OpenAI, Azure
/// OpenAI or any OpenAI-compatible endpoint, each with its key and capabilities), the <c>OPENAI_*</c> / <c>OpenAI</c>
/// endpoint as entries of its own (its model and its <c>NonStreamingModels</c>), and the demo model when neither is
/// configured. Every setting that is wrong is reported at once, by its configuration path; no message carries a key.
/// </summary>
public static partial class ModelRegistryConfiguration
{
    /// <summary>The section of the registry's entries: <c>Models:{name}:{setting}</c>.</summary>
    public const string SectionName = "Models";

    /// <summary>The setting naming the default model (a registered name).</summary>
    public const string DefaultModelKey = "DefaultModel";

    private const string OpenAiBaseUrl = "https://api.openai.com/v1";

    /// <summary>The registry, or an <see cref="InvalidOperationException"/> naming each setting that is wrong.</summary>
    /// <param name="configuration">The silo's configuration.</param>
    /// <param name="legacy">The <c>OPENAI_*</c> endpoint (or the demo model when none is set).</param>
    /// <param name="demo">Creates the demo model.</param>
    /// <param name="logger">Where OpenAI-compatible models log their failed calls.</param>
    public static ModelRegistry Build(IConfiguration configuration, ModelSelection legacy, Func<IChatModel> demo, ILogger<OpenAiChatModel>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(legacy);
        ArgumentNullException.ThrowIfNull(demo);

        var errors = new List<string>();
        var models = new Dictionary<string, (RegisteredModel Model, OpenAiModelOptions? Options)>(StringComparer.Ordinal);
        foreach (var section in configuration.GetSection(SectionName).GetChildren())
        {
            if (Parse(section, errors, logger) is { } entry)
            {
                models[entry.Model.Name] = entry;
            }
        }

        string? defaultName = null;
        var legacyNames = new HashSet<string>(StringComparer.Ordinal);
        if (legacy.Options is { } endpoint)
        {
            // The OPENAI_* endpoint's models, unless a Models entry of the same name says otherwise.
            var kind = endpoint.IsAzure ? ModelKinds.Azure : endpoint.BaseUrl is null ? ModelKinds.OpenAi : ModelKinds.Compatible;
            foreach (var name in new[] { endpoint.Model }.Concat(legacy.NonStreamingModels.Order(StringComparer.Ordinal)))
            {
                if (!models.ContainsKey(name))
                {
                    var options = legacy.OptionsFor(name);
                    models[name] = (new RegisteredModel(name, new OpenAiChatModel(options, logger)) { Kind = kind, Endpoint = legacy.Endpoint }, options);
                    legacyNames.Add(name);
                }
            }

            defaultName = endpoint.Model;
        }

        if (NullIfEmpty(configuration[DefaultModelKey]) is { } configured)
        {
            if (models.ContainsKey(configured))
            {
                defaultName = configured;
            }
            else
            {
                errors.Add($"{DefaultModelKey}: no model is named '{configured}'; registered: {Names(models.Keys)}.");
            }
        }

        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The model registry is not valid: " + string.Join(" ", errors));
        }

        if (models.Count == 0)
        {
            var model = demo();
            return new ModelRegistry([new RegisteredModel(model.Name, model) { Kind = ModelKinds.Demo, Endpoint = "built-in demo model" }], model.Name, _ => model, isDemo: true);
        }

        defaultName ??= models.Keys.Order(StringComparer.Ordinal).First();
        var fallback = models[defaultName];
        // A name that is not registered goes to the default model's endpoint as a model id.
        // The OPENAI_* endpoint keeps its own rule (OpenAI:NonStreamingModels) for such names.
        Func<string, IChatModel> passThrough = legacyNames.Contains(defaultName)
            ? name => new OpenAiChatModel(legacy.OptionsFor(name), logger)
            : name => new OpenAiChatModel(fallback.Options! with { Model = name }, logger);
        return new ModelRegistry(models.Values.Select(m => m.Model), defaultName, passThrough);
    }

    /// <summary>One <c>Models:{name}</c> entry, or null (with its errors added).</summary>
    private static (RegisteredModel Model, OpenAiModelOptions? Options)? Parse(IConfigurationSection section, List<string> errors, ILogger<OpenAiChatModel>? logger)
    {
        var name = section.Key;
        var path = section.Path;
        var before = errors.Count;
        if (!NamePattern().IsMatch(name))
        {
            errors.Add($"{path}: a model's name must be 1-128 characters: letters, digits, '_', '-', '.' or '/'.");
            return null;
        }

        var kind = NullIfEmpty(section["Kind"])?.ToLowerInvariant();
        if (kind is not (null or ModelKinds.OpenAi or ModelKinds.Azure or ModelKinds.Compatible))
        {
            errors.Add($"{path}:Kind must be '{ModelKinds.OpenAi}', '{ModelKinds.Azure}' or '{ModelKinds.Compatible}' (or unset: decided by BaseUrl's host); got '{section["Kind"]}'.");
        }

        Uri? baseUrl = null;
        if (NullIfEmpty(section["BaseUrl"]) is { } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out baseUrl) || baseUrl.Scheme is not ("http" or "https"))
            {
                errors.Add($"{path}:BaseUrl must be an absolute http(s) URL.");
                baseUrl = null;
            }
            else if (baseUrl.UserInfo.Length > 0)
            {
                errors.Add($"{path}:BaseUrl must not carry credentials; put the key in {path}:ApiKey.");
                baseUrl = null;
            }
        }

        kind ??= baseUrl is null ? ModelKinds.OpenAi : AzureOpenAiEndpoint.IsAzureHost(baseUrl) ? ModelKinds.Azure : ModelKinds.Compatible;
        if (baseUrl is null && kind is ModelKinds.Azure or ModelKinds.Compatible && NullIfEmpty(section["BaseUrl"]) is null)
        {
            errors.Add($"{path}:BaseUrl is required for kind '{kind}'.");
        }

        var apiKey = NullIfEmpty(section["ApiKey"]);
        if (apiKey is null && kind == ModelKinds.OpenAi && baseUrl is null)
        {
            errors.Add($"{path}:ApiKey is required for api.openai.com.");
        }

        if (apiKey is null && kind == ModelKinds.Azure && baseUrl is { Scheme: not "https" })
        {
            errors.Add($"{path}:BaseUrl must be https: Azure OpenAI without ApiKey uses Entra ID, whose tokens are only sent over https.");
        }

        var modelId = NullIfEmpty(section["Model"]);
        var deployment = NullIfEmpty(section["Deployment"]);
        if (modelId is not null && deployment is not null && modelId != deployment)
        {
            errors.Add($"{path}:Model and {path}:Deployment name different models; set one.");
        }

        var streaming = Bool(section, "Streaming", true, errors);
        var tools = Bool(section, "Tools", true, errors);
        var contextWindow = Int(section, "ContextWindow", null, 1, int.MaxValue, errors);
        var maxRetries = Int(section, "MaxRetries", 2, 0, 10, errors) ?? 2;
        var timeout = TimeSpan.FromSeconds(100);
        if (NullIfEmpty(section["NetworkTimeout"]) is { } timeoutText
            && (!TimeSpan.TryParse(timeoutText, CultureInfo.InvariantCulture, out timeout) || timeout <= TimeSpan.Zero))
        {
            errors.Add($"{path}:NetworkTimeout must be a positive time span such as 00:01:40.");
        }

        if (errors.Count > before)
        {
            return null;
        }

        var options = new OpenAiModelOptions
        {
            ApiKey = apiKey,
            BaseUrl = baseUrl,
            Model = modelId ?? deployment ?? name,
            SupportsStreaming = streaming,
            MaxRetries = maxRetries,
            NetworkTimeout = timeout,
            Provider = kind == ModelKinds.Azure ? OpenAiProvider.Azure : OpenAiProvider.OpenAi,
            AzureApiVersion = NullIfEmpty(section["AzureApiVersion"]) ?? OpenAiModelOptions.DefaultAzureApiVersion,
        };
        OpenAiChatModel model;
        try
        {
            model = new OpenAiChatModel(options, logger);
        }
        catch (ArgumentException ex)
        {
            // E.g. an AzureApiVersion that Azure.AI.OpenAI does not know. The message names no key.
            errors.Add($"{path}: {ex.Message}");
            return null;
        }

        var endpoint = baseUrl is null ? OpenAiBaseUrl : baseUrl.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
        return (new RegisteredModel(name, model) { Kind = kind, SupportsTools = tools, ContextWindow = contextWindow, Endpoint = endpoint }, options);
    }

    private static bool Bool(IConfigurationSection section, string key, bool fallback, List<string> errors)
    {
        if (NullIfEmpty(section[key]) is not { } text)
        {
            return fallback;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        errors.Add($"{section.Path}:{key} must be true or false.");
        return fallback;
    }

    private static int? Int(IConfigurationSection section, string key, int? fallback, int min, int max, List<string> errors)
    {
        if (NullIfEmpty(section[key]) is not { } text)
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        errors.Add($"{section.Path}:{key} must be a whole number from {min} to {max}.");
        return fallback;
    }

    private static string Names(IEnumerable<string> names) =>
        names.Any() ? string.Join(", ", names.Order(StringComparer.Ordinal)) : "none";

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    [GeneratedRegex("^[A-Za-z0-9_./-]{1,128}$")]
    private static partial Regex NamePattern();
}
