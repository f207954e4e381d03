using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>
/// Resolves model names to models: the default one, and others created on first use by a factory (typically the same
/// endpoint with another model name) and kept for reuse.
/// </summary>
public sealed class ChatModelProvider : IChatModelProvider
{
    private readonly IChatModel _defaultModel;
    private readonly Func<string, IChatModel> _factory;
    private readonly ConcurrentDictionary<string, IChatModel> _models = new(StringComparer.Ordinal);

    public ChatModelProvider(IChatModel defaultModel, Func<string, IChatModel> factory)
    {
        ArgumentNullException.ThrowIfNull(defaultModel);
        ArgumentNullException.ThrowIfNull(factory);
        _defaultModel = defaultModel;
        _factory = factory;
        _models[defaultModel.Name] = defaultModel;
    }

    /// <summary>A provider whose models all live on the endpoint <paramref name="options"/> describes.</summary>
    public static ChatModelProvider ForOpenAi(OpenAiModelOptions options, ILogger<OpenAiChatModel>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new ChatModelProvider(new OpenAiChatModel(options, logger), name => new OpenAiChatModel(options with { Model = name }, logger));
    }

    /// <inheritdoc />
    public string DefaultModel => _defaultModel.Name;

    /// <inheritdoc />
    public IChatModel Resolve(string? modelName) =>
        string.IsNullOrWhiteSpace(modelName) ? _defaultModel : _models.GetOrAdd(modelName, _factory);
}
