using Conversations.Gateway.Agents;
using Conversations.Gateway.Catalog;

namespace Conversations.Gateway.Models;

/// <summary>
/// The native model registry: <c>GET /models</c> and <c>GET /models/{name}</c>, the silos' registered models with
/// their capabilities, asked of the cluster. Never an endpoint's URL or key. (<c>GET /v1/models</c> lists the same
/// models, and the agents, in OpenAI's shape.)
/// </summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/models").WithTags("Models");
        models.MapGet("/", ListAsync).WithName("ListModels")
            .WithSummary("The registered models, the default first, with their capabilities (streaming, tools, context window).")
            .Produces<ModelsResponse>();
        models.MapGet("/{*name}", GetAsync).WithName("GetModel")
            .WithSummary("One registered model; 404 when no model has the name.")
            .Produces<ModelResponse>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> ListAsync(SiloCatalog silo, CancellationToken cancellationToken)
    {
        var catalog = await silo.GetModelsAsync(cancellationToken);
        return TypedResults.Json(
            new ModelsResponse(catalog.DefaultModel, [.. catalog.Models.Select(m => ModelResponse.From(m, catalog.DefaultModel))]),
            ResourceJson.Options);
    }

    private static async Task<IResult> GetAsync(string name, SiloCatalog silo, CancellationToken cancellationToken)
    {
        var catalog = await silo.GetModelsAsync(cancellationToken);
        var model = catalog.Models.FirstOrDefault(m => m.Name == name);
        return model is null
            ? TypedResults.Problem($"No model is named '{name}'.", statusCode: StatusCodes.Status404NotFound, title: "Model not found",
                extensions: new Dictionary<string, object?> { ["code"] = "model_not_found" })
            : TypedResults.Json(ModelResponse.From(model, catalog.DefaultModel), ResourceJson.Options);
    }
}
