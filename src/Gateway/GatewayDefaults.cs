using System.Text.Json;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Limits;
using Conversations.Gateway.Streaming;
using Conversations.Gateway.Telemetry;
using Conversations.ServiceDefaults.Telemetry;
using Conversations.Grains.Abstractions.Serialization;
using Microsoft.AspNetCore.Http.Json;

namespace Conversations.Gateway;

/// <summary>The gateway's service and pipeline defaults.</summary>
public static class GatewayDefaults
{
    public static IHostApplicationBuilder AddGatewayDefaults(this IHostApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = DescribeBareStatus);
        builder.Services.AddRequestLimits();
        builder.Services.AddExceptionHandler<BadRequestExceptionHandler>();
        builder.Services.AddExceptionHandler<DependencyUnavailableHandler>();
        builder.Services.AddOpenApi();
        builder.Services.Configure<JsonOptions>(o => CopyContractJson(o.SerializerOptions));
        // Bad bodies reach the exception handler, which names the field, in every environment.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddSingleton<Threads.ThreadRunner>();
        builder.AddConversationsTelemetry("conversations-gateway");
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddSingleton<ThreadEventHub>();
        builder.Services.AddSingleton<IThreadEventSource>(sp => sp.GetRequiredService<ThreadEventHub>());
        builder.Services.AddSingleton<Catalog.SiloCatalog>();
        builder.Services.AddSingleton<Grains.Abstractions.Agents.IAgentCatalog>(sp => sp.GetRequiredService<Catalog.SiloCatalog>());
        builder.Services.AddSingleton<Compat.StreamingChat.StreamingChatConversations>();
        builder.Services.AddOptions<StreamingOptions>()
            .BindConfiguration(StreamingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return builder;
    }

    public static WebApplication UseGatewayDefaults(this WebApplication app)
    {
        // First: a request over the URL or header limits is answered before anything reads it.
        app.UseRequestLimits();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseWebSockets();
        app.MapOpenApi();
        // Like /ops: operators only (an admin credential, or the open mode on loopback).
        app.MapTelemetryEndpoints().RequireAuthorization(Auth.Caller.AdminPolicy);
        return app;
    }

    /// <summary>
    /// Words for the statuses the framework answers without any (status code pages): a body that is not JSON (415)
    /// names the content type it needs, an unknown method (405) the methods the path has.
    /// </summary>
    private static void DescribeBareStatus(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if (problem.Detail is not null)
        {
            return;
        }

        var request = context.HttpContext.Request;
        problem.Detail = problem.Status switch
        {
            StatusCodes.Status415UnsupportedMediaType =>
                $"The request body must be JSON: send Content-Type: application/json{(string.IsNullOrEmpty(request.ContentType) ? "" : $" (got '{request.ContentType}')")}.",
            StatusCodes.Status405MethodNotAllowed =>
                $"{request.Method} is not allowed on {request.Path}{(context.HttpContext.Response.Headers.Allow is { Count: > 0 } allow ? $"; it allows {allow}" : "")}.",
            StatusCodes.Status404NotFound => $"Nothing is at {request.Path}.",
            _ => null,
        };
    }

    private static void CopyContractJson(JsonSerializerOptions target)
    {
        target.PropertyNamingPolicy = ContractJson.Options.PropertyNamingPolicy;
        target.DefaultIgnoreCondition = ContractJson.Options.DefaultIgnoreCondition;
        target.Encoder = ContractJson.Options.Encoder;
    }
}
