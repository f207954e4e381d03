using System.Text.Json;
using Conversations.Gateway.Errors;
using Conversations.Gateway.Streaming;
using Conversations.Grains.Abstractions.Serialization;
using Microsoft.AspNetCore.Http.Json;

namespace Conversations.Gateway;

/// <summary>The gateway's service and pipeline defaults.</summary>
public static class GatewayDefaults
{
    public static IHostApplicationBuilder AddGatewayDefaults(this IHostApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<BadRequestExceptionHandler>();
        builder.Services.AddExceptionHandler<DependencyUnavailableHandler>();
        builder.Services.AddOpenApi();
        builder.Services.Configure<JsonOptions>(o => CopyContractJson(o.SerializerOptions));
        // Bad bodies reach the exception handler, which names the field, in every environment.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddSingleton<Threads.ThreadRunner>();
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
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseWebSockets();
        app.MapOpenApi();
        return app;
    }

    private static void CopyContractJson(JsonSerializerOptions target)
    {
        target.PropertyNamingPolicy = ContractJson.Options.PropertyNamingPolicy;
        target.DefaultIgnoreCondition = ContractJson.Options.DefaultIgnoreCondition;
        target.Encoder = ContractJson.Options.Encoder;
    }
}
