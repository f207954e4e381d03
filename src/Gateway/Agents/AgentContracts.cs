using System.Text.Json;
using System.Text.Json.Serialization;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Serialization;

namespace Conversations.Gateway.Agents;

/// <summary>
/// The body of <c>POST /agents</c> and <c>PUT /agents/{name}</c>, and (every field optional, null to reset one to its
/// default) of <c>PATCH /agents/{name}</c>, a JSON merge patch. Documentation of the shape; the handlers read the JSON
/// themselves to tell a field left out from a field set to null.
/// </summary>
/// <param name="Name">The agent's name: 1-64 letters, digits, '_', '-' or '.'. Required by POST; elsewhere it must be the path's.</param>
/// <param name="Instructions">The system instructions, at most 32,000 characters.</param>
/// <param name="Model">A registered model (<c>GET /models</c>); null for the default model.</param>
/// <param name="Tools">Names of the tools the agent may call; null for every tool.</param>
/// <param name="Temperature">Sampling temperature, 0-2; null for the model's default.</param>
/// <param name="MaxTokens">Output token limit per model call; null for the model's default.</param>
/// <param name="MaxParallelTools">How many tool calls of one model turn run at once, 1-64 (4).</param>
/// <param name="ToolTimeoutSeconds">How long one tool call may take, more than 0 and at most 3,600 seconds (30).</param>
/// <param name="MaxDepth">How many model calls one run may make, 1-100 (8).</param>
/// <param name="HistoryBudget">How many tokens of history one model call may carry; null for no limit.</param>
/// <param name="MultitaskStrategy"><c>reject</c> (default), <c>enqueue</c>, <c>interrupt</c>, <c>rollback</c> or <c>steer</c>.</param>
/// <param name="ClientTools">Tools the client runs (<c>run.requires_action</c>): name, description, parameters (a JSON schema); null for none.</param>
/// <param name="HttpTools">HTTP tools of this agent alone (<see cref="HttpToolInput"/>); null for none.</param>
/// <param name="MaxToolCalls">How many tool calls one run may make in all, 1-10,000 (64); more end the run <c>failed</c> (<c>tool_call_limit</c>).</param>
public sealed record AgentRequest(
    string? Name,
    string? Instructions,
    string? Model,
    IReadOnlyList<string>? Tools,
    double? Temperature,
    int? MaxTokens,
    int? MaxParallelTools,
    double? ToolTimeoutSeconds,
    int? MaxDepth,
    int? HistoryBudget,
    string? MultitaskStrategy,
    IReadOnlyList<ClientToolInput>? ClientTools = null,
    IReadOnlyList<HttpToolInput>? HttpTools = null,
    int? MaxToolCalls = null);

/// <summary>A tool the client runs, as the agents API takes and shows it.</summary>
/// <param name="Name">The function name the model calls: 1-64 letters, digits, '_' or '-'; not a server tool's name.</param>
/// <param name="Description">What it does, for the model.</param>
/// <param name="Parameters">The JSON schema of its arguments (an object); <c>{"type":"object","properties":{}}</c> when null.</param>
public sealed record ClientToolInput(string Name, string? Description, JsonElement? Parameters)
{
    public static IReadOnlyList<ClientToolInput>? From(IReadOnlyList<ClientToolDefinition>? tools) =>
        tools?.Select(t => new ClientToolInput(t.Name, t.Description, JsonDocument.Parse(t.Parameters).RootElement.Clone())).ToList();
}

/// <summary>
/// An HTTP tool of one agent, as the agents API takes and shows it: each call is one request. Credentials are never
/// given here: a header value names a secret of the silos' configuration (<c>Bearer ${secret:WEATHER_KEY}</c>).
/// </summary>
/// <param name="Name">The function name the model calls: 1-64 letters, digits, '_' or '-'; no other tool's name.</param>
/// <param name="Description">What it does, for the model. Required.</param>
/// <param name="Parameters">The JSON schema of its arguments (an object); none when null.</param>
/// <param name="Url">An absolute http(s) URL; <c>{argument}</c> placeholders take the URL-escaped arguments.</param>
/// <param name="Method"><c>GET</c> (default) or <c>DELETE</c> send the other arguments as the query; <c>POST</c>, <c>PUT</c>, <c>PATCH</c> as a JSON body.</param>
/// <param name="Headers">Request headers; values may name secrets.</param>
/// <param name="TimeoutSeconds">How long one call may take, retries included: 0.01-60 seconds (10).</param>
/// <param name="Retry">Whether failed attempts are retried; null for the method's default (GET, PUT, DELETE yes).</param>
/// <param name="MaxResponseChars">The most characters of the response the model reads, 100-1,000,000 (16,000).</param>
public sealed record HttpToolInput(
    string Name,
    string? Description,
    JsonElement? Parameters,
    string Url,
    string? Method,
    IReadOnlyDictionary<string, string>? Headers,
    double? TimeoutSeconds,
    bool? Retry,
    int? MaxResponseChars)
{
    public static IReadOnlyList<HttpToolInput>? From(IReadOnlyList<HttpToolDefinition>? tools) =>
        tools?.Select(t => new HttpToolInput(
            t.Name, t.Description, JsonDocument.Parse(t.Parameters).RootElement.Clone(), t.Url, t.Method, t.Headers,
            t.Timeout.TotalSeconds, t.Retry, t.MaxResponseChars)).ToList();
}

/// <summary>An agent as the native API shows it: its settings (null: the default), version, source and times.</summary>
/// <param name="Name">The agent's name.</param>
/// <param name="Instructions">The system instructions.</param>
/// <param name="Model">The model; null for the default model.</param>
/// <param name="Tools">The tools the agent may call; null for every tool.</param>
/// <param name="Temperature">Sampling temperature; null for the model's default.</param>
/// <param name="MaxTokens">Output token limit per model call; null for the model's default.</param>
/// <param name="MaxParallelTools">How many tool calls run at once.</param>
/// <param name="ToolTimeoutSeconds">How long one tool call may take, in seconds.</param>
/// <param name="MaxDepth">How many model calls one run may make.</param>
/// <param name="HistoryBudget">Tokens of history per model call; null for no limit.</param>
/// <param name="MultitaskStrategy">What a message does while a run is active.</param>
/// <param name="ClientTools">Tools the client runs; null for none.</param>
/// <param name="HttpTools">HTTP tools of this agent alone; null for none.</param>
/// <param name="MaxToolCalls">How many tool calls one run may make in all.</param>
/// <param name="Version">Increases with every write through the API; the ETag is its quoted value. 0: only configuration declares the agent.</param>
/// <param name="Source"><c>configuration</c>, or <c>api</c> when the API wrote it last (that write wins over configuration).</param>
/// <param name="Configured">True when configuration declares an agent of this name.</param>
/// <param name="CreatedAt">When the API created it; null for an agent only configuration declares.</param>
/// <param name="UpdatedAt">When the API last wrote it; null for an agent only configuration declares.</param>
public sealed record AgentResponse(
    string Name,
    string Instructions,
    string? Model,
    IReadOnlyList<string>? Tools,
    double? Temperature,
    int? MaxTokens,
    int MaxParallelTools,
    double ToolTimeoutSeconds,
    int MaxDepth,
    int? HistoryBudget,
    string MultitaskStrategy,
    IReadOnlyList<ClientToolInput>? ClientTools,
    IReadOnlyList<HttpToolInput>? HttpTools,
    int MaxToolCalls,
    long Version,
    string Source,
    bool Configured,
    DateTimeOffset? CreatedAt,
    DateTimeOffset? UpdatedAt)
{
    public static AgentResponse From(AgentResource resource)
    {
        var agent = resource.Definition;
        return new(
            agent.Name, agent.Instructions, agent.Model, agent.Tools, agent.Temperature, agent.MaxTokens, agent.MaxParallelTools,
            agent.ToolTimeout.TotalSeconds, agent.MaxDepth, agent.HistoryBudget, agent.MultitaskStrategy, ClientToolInput.From(agent.ClientTools),
            HttpToolInput.From(agent.HttpTools), agent.MaxToolCalls, resource.Version, resource.Source, resource.Configured, resource.CreatedAt, resource.UpdatedAt);
    }
}

/// <summary>The answer of <c>GET /agents?format=native</c>: every agent, ordered by name.</summary>
public sealed record AgentList(IReadOnlyList<AgentResponse> Data);

/// <summary>The JSON of the native agent and model resources (<c>/agents</c>, <c>/models</c>): the contracts' camelCase, with nulls written (a null is a default).</summary>
public static class ResourceJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(ContractJson.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.Never };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
