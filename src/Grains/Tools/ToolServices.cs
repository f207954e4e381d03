using Conversations.Grains.Tools.Http;
using Conversations.Grains.Tools.Mcp;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

namespace Conversations.Grains.Tools;

/// <summary>Registers the tools that configuration declares (HTTP tools, MCP servers) and the registry of all tools.</summary>
public static class ToolServices
{
    /// <summary>
    /// The <see cref="ToolRegistry"/> over the <see cref="ITool"/> built-ins registered elsewhere, the HTTP tools of
    /// <c>Tools:Http</c> and the MCP servers of <c>Tools:Mcp</c> (listed at start by a hosted service). Bad
    /// declarations stop the silo at start with a message naming the setting.
    /// </summary>
    public static IServiceCollection AddConfiguredTools(this IServiceCollection services)
    {
        services.AddSingleton<IConfigureOptions<HttpToolsOptions>, HttpToolsSetup>();
        services.AddSingleton<IValidateOptions<HttpToolsOptions>, HttpToolsSetup>();
        services.AddOptions<HttpToolsOptions>().ValidateOnStart();
        services.AddHttpClient(HttpTool.ClientName)
            // Each call's own timeout (HttpToolSettings.Timeout) bounds it, retries included.
            .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan)
            .RedactLoggedHeaders(_ => true)
            .AddStandardResilienceHandler()
            .Configure((resilience, provider) => ConfigureResilience(resilience, provider.GetRequiredService<IOptions<HttpToolsOptions>>().Value))
            // A circuit per host: one failing service does not pause the tools of another.
            .SelectPipelineByAuthority();
        services.AddSingleton<IToolSource, HttpToolSource>();

        services.AddSingleton<IConfigureOptions<McpServersOptions>, McpServersSetup>();
        services.AddSingleton<IValidateOptions<McpServersOptions>, McpServersSetup>();
        services.AddOptions<McpServersOptions>().ValidateOnStart();
        services.AddHttpClient(McpServer.HttpClientName).ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan).RedactLoggedHeaders(_ => true);
        services.AddSingleton<McpToolSource>();
        services.AddSingleton<IToolSource>(provider => provider.GetRequiredService<McpToolSource>());
        services.AddHostedService(provider => provider.GetRequiredService<McpToolSource>());

        services.AddSingleton(provider =>
        {
            var clients = provider.GetRequiredService<IHttpClientFactory>();
            var configuration = provider.GetRequiredService<IConfiguration>();
            return new ToolRegistry(provider.GetServices<ITool>(), provider.GetServices<IToolSource>(), spec => new HttpTool(spec, clients, configuration));
        });
        return services;
    }

    /// <summary>
    /// The standard handler (rate limiter, total timeout, retries with exponential backoff and jitter, circuit
    /// breaker, attempt timeout) with three changes: its timeouts are the longest tool timeout, so they never cut a
    /// call shorter than its tool allows (each call's own timeout is the bound); at most 2 retries, from 500 ms; and a
    /// request is retried only when its tool allows it (<see cref="HttpTool.AllowRetries"/>: not for POST or PATCH
    /// unless configured).
    /// </summary>
    private static void ConfigureResilience(HttpStandardResilienceOptions resilience, HttpToolsOptions tools)
    {
        var longest = tools.LongestTimeout;
        resilience.AttemptTimeout.Timeout = longest;
        resilience.TotalRequestTimeout.Timeout = longest;
        var sampling = longest * 2;
        resilience.CircuitBreaker.SamplingDuration = sampling > resilience.CircuitBreaker.SamplingDuration ? sampling : resilience.CircuitBreaker.SamplingDuration;

        // Short retries: a call's timeout (10 s by default) should leave room for the answer after them.
        resilience.Retry.MaxRetryAttempts = 2;
        resilience.Retry.Delay = TimeSpan.FromMilliseconds(500);

        var shouldRetry = resilience.Retry.ShouldHandle;
        resilience.Retry.ShouldHandle = arguments =>
            arguments.Context.GetRequestMessage() is { } request
            && request.Options.TryGetValue(HttpTool.AllowRetries, out var allowed)
            && allowed
                ? shouldRetry(arguments)
                : ValueTask.FromResult(false);
    }
}
