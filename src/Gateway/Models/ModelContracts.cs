using Conversations.Grains.Abstractions.Models;

namespace Conversations.Gateway.Models;

/// <summary>The answer of <c>GET /models</c>: the registered models, the default first.</summary>
/// <param name="DefaultModel">The model used when an agent or request names none.</param>
/// <param name="Data">Every registered model.</param>
public sealed record ModelsResponse(string DefaultModel, IReadOnlyList<ModelResponse> Data);

/// <summary>A registered model: what it is and what it can do. Never its endpoint's URL or key.</summary>
/// <param name="Name">The name agents and requests use.</param>
/// <param name="Kind"><c>openai</c>, <c>azure</c>, <c>compatible</c> or <c>demo</c>.</param>
/// <param name="Model">The model id (on Azure OpenAI the deployment) sent to the endpoint.</param>
/// <param name="Default">True for the default model.</param>
/// <param name="Capabilities">What the model can do.</param>
public sealed record ModelResponse(string Name, string Kind, string Model, bool Default, ModelCapabilities Capabilities)
{
    public static ModelResponse From(ModelInfo model, string defaultModel) =>
        new(model.Name, model.Kind, model.ModelId ?? model.Name, model.Name == defaultModel, new ModelCapabilities(model.SupportsStreaming, model.SupportsTools, model.ContextWindow));
}

/// <summary>What a model can do.</summary>
/// <param name="Streaming">False for a model that answers whole (its answer is one text delta; seed 001 refuses <c>stream=true</c> for it).</param>
/// <param name="Tools">False for a model that is never sent tools.</param>
/// <param name="ContextWindow">The context window in tokens, when configuration gives it.</param>
public sealed record ModelCapabilities(bool Streaming, bool Tools, int? ContextWindow);
