using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Models;

namespace Conversations.Gateway.Agents;

/// <summary>
/// Reads an agent's JSON (<see cref="AgentRequest"/>) into an <see cref="AgentDefinition"/>, checking every field; each
/// error is keyed by the field's name (<c>temperature</c>, <c>tools[1]</c>) and its message names it too. Applies JSON
/// merge patches (RFC 7396) for <c>PATCH</c>.
/// </summary>
internal static partial class AgentDocument
{
    public const int MaxNameLength = 64;
    public const int MaxInstructionsLength = 32_000;
    public const int MaxParallelTools = 64;
    public const double MinToolTimeoutSeconds = 0.01;
    public const double MaxToolTimeoutSeconds = 3600;
    public const int MaxDepth = 100;

    public const string NameRule = "name must be 1-64 characters: letters, digits, '_', '-' or '.'.";

    /// <summary>The fields a client writes.</summary>
    public static readonly IReadOnlyList<string> Fields =
    [
        "name", "instructions", "model", "tools", "temperature", "maxTokens", "maxParallelTools", "toolTimeoutSeconds",
        "maxDepth", "historyBudget", "multitaskStrategy", "clientTools", "httpTools", "maxToolCalls",
    ];

    /// <summary>Fields of <see cref="AgentResponse"/> the server sets; accepted in a body (a GET's answer sent back) and ignored.</summary>
    private static readonly HashSet<string> ServerFields = new(StringComparer.Ordinal) { "version", "source", "configured", "createdAt", "updatedAt" };

    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>Adds an error for each field of <paramref name="body"/> that an agent does not have.</summary>
    public static void CheckFields(JsonObject body, Dictionary<string, string[]> errors)
    {
        foreach (var (field, _) in body)
        {
            if (Fields.Contains(field) || ServerFields.Contains(field))
            {
                continue;
            }

            var camel = ToCamelCase(field);
            errors[field] = [Fields.Contains(camel)
                ? $"'{field}' is not a field of an agent; did you mean '{camel}'?"
                : $"'{field}' is not a field of an agent; the fields are {string.Join(", ", Fields)}."];
        }
    }

    /// <summary>The fields a client writes, of <paramref name="body"/> (the server's own dropped).</summary>
    public static JsonObject Writable(JsonObject body)
    {
        var writable = new JsonObject();
        foreach (var (field, value) in body)
        {
            if (!ServerFields.Contains(field))
            {
                writable[field] = value?.DeepClone();
            }
        }

        return writable;
    }

    /// <summary>An agent's settings as JSON: the document a merge patch applies to.</summary>
    public static JsonObject ToJson(AgentDefinition agent) =>
        (JsonObject)JsonSerializer.SerializeToNode(
            new AgentRequest(
                agent.Name, agent.Instructions, agent.Model, agent.Tools, agent.Temperature, agent.MaxTokens, agent.MaxParallelTools,
                agent.ToolTimeout.TotalSeconds, agent.MaxDepth, agent.HistoryBudget, agent.MultitaskStrategy, ClientToolInput.From(agent.ClientTools),
                HttpToolInput.From(agent.HttpTools), agent.MaxToolCalls),
            ResourceJson.Options)!;

    /// <summary>RFC 7396: <paramref name="patch"/> applied to <paramref name="target"/> (which it does not change).</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : new JsonObject();
        foreach (var (field, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(field);
            }
            else
            {
                result[field] = MergePatch(result[field], value);
            }
        }

        return result;
    }

    /// <summary>
    /// The agent named <paramref name="name"/> that <paramref name="body"/> describes: a field left out or null takes
    /// its default. The model must be registered, unless it is <paramref name="currentModel"/> (the agent's model now,
    /// which configuration or seed 003 may have set to a model id of the default endpoint). Null when an error was added.
    /// </summary>
    public static AgentDefinition? Read(JsonObject body, string name, ModelCatalog catalog, string? currentModel, Dictionary<string, string[]> errors)
    {
        var before = errors.Count;
        var agent = new AgentDefinition(name);

        if (body["instructions"] is { } instructions)
        {
            if (TryString(instructions, out var text) && text.Length <= MaxInstructionsLength)
            {
                agent = agent with { Instructions = text };
            }
            else
            {
                errors["instructions"] = [$"instructions must be a string of at most {MaxInstructionsLength} characters."];
            }
        }

        ModelInfo? model = null;
        if (body["model"] is { } modelNode)
        {
            if (!TryString(modelNode, out var modelName) || modelName.Length is 0 or > 128)
            {
                errors["model"] = ["model must be the name of a registered model (GET /models), or null for the default model."];
            }
            else if (modelName != currentModel && !catalog.IsRegistered(modelName))
            {
                errors["model"] = [$"model: no model is named '{modelName}'; registered: {string.Join(", ", catalog.Models.Select(m => m.Name))}."];
            }
            else
            {
                agent = agent with { Model = modelName };
                model = catalog.Models.FirstOrDefault(m => m.Name == modelName);
            }
        }
        else
        {
            model = catalog.Models.FirstOrDefault(m => m.Name == catalog.DefaultModel);
        }

        if (body["tools"] is { } toolsNode)
        {
            agent = agent with { Tools = ReadTools(toolsNode, catalog, model, errors) };
        }

        if (body["temperature"] is { } temperatureNode)
        {
            if (TryDouble(temperatureNode, out var temperature) && temperature is >= 0 and <= 2)
            {
                agent = agent with { Temperature = temperature };
            }
            else
            {
                errors["temperature"] = ["temperature must be between 0 and 2."];
            }
        }

        if (body["maxTokens"] is { } maxTokensNode)
        {
            if (!TryInt(maxTokensNode, out var maxTokens) || maxTokens < 1)
            {
                errors["maxTokens"] = ["maxTokens must be a whole number of at least 1, or null for the model's default."];
            }
            else if (model?.ContextWindow is { } window && maxTokens > window)
            {
                errors["maxTokens"] = [$"maxTokens must be at most the context window of model '{model.Name}' ({window} tokens)."];
            }
            else
            {
                agent = agent with { MaxTokens = maxTokens };
            }
        }

        if (body["maxParallelTools"] is { } parallelNode)
        {
            if (TryInt(parallelNode, out var parallel) && parallel is >= 1 and <= MaxParallelTools)
            {
                agent = agent with { MaxParallelTools = parallel };
            }
            else
            {
                errors["maxParallelTools"] = [$"maxParallelTools must be a whole number between 1 and {MaxParallelTools}."];
            }
        }

        if (body["toolTimeoutSeconds"] is { } timeoutNode)
        {
            if (TryDouble(timeoutNode, out var seconds) && seconds is >= MinToolTimeoutSeconds and <= MaxToolTimeoutSeconds)
            {
                agent = agent with { ToolTimeout = TimeSpan.FromSeconds(seconds) };
            }
            else
            {
                errors["toolTimeoutSeconds"] = [string.Create(CultureInfo.InvariantCulture, $"toolTimeoutSeconds must be a number of seconds between {MinToolTimeoutSeconds} and {MaxToolTimeoutSeconds}.")];
            }
        }

        if (body["maxDepth"] is { } depthNode)
        {
            if (TryInt(depthNode, out var depth) && depth is >= 1 and <= MaxDepth)
            {
                agent = agent with { MaxDepth = depth };
            }
            else
            {
                errors["maxDepth"] = [$"maxDepth must be a whole number between 1 and {MaxDepth}."];
            }
        }

        if (body["maxToolCalls"] is { } toolCallsNode)
        {
            if (TryInt(toolCallsNode, out var toolCalls) && toolCalls is >= 1 and <= AgentDefinition.MaxToolCallsLimit)
            {
                agent = agent with { MaxToolCalls = toolCalls };
            }
            else
            {
                errors["maxToolCalls"] = [$"maxToolCalls must be a whole number between 1 and {AgentDefinition.MaxToolCallsLimit}."];
            }
        }

        if (body["historyBudget"] is { } budgetNode)
        {
            if (!TryInt(budgetNode, out var budget) || budget < 1)
            {
                errors["historyBudget"] = ["historyBudget must be a whole number of tokens, at least 1, or null for no limit."];
            }
            else if (model?.ContextWindow is { } window && budget > window)
            {
                errors["historyBudget"] = [$"historyBudget must be at most the context window of model '{model.Name}' ({window} tokens)."];
            }
            else
            {
                agent = agent with { HistoryBudget = budget };
            }
        }

        if (body["multitaskStrategy"] is { } strategyNode)
        {
            if (TryString(strategyNode, out var strategy) && MultitaskStrategies.All.Contains(strategy))
            {
                agent = agent with { MultitaskStrategy = strategy };
            }
            else
            {
                errors["multitaskStrategy"] = [$"multitaskStrategy must be one of {string.Join(", ", MultitaskStrategies.All)}."];
            }
        }

        if (body["clientTools"] is { } clientToolsNode)
        {
            agent = agent with { ClientTools = ReadClientTools(clientToolsNode, catalog, errors) };
        }

        if (body["httpTools"] is { } httpToolsNode)
        {
            agent = agent with { HttpTools = ReadHttpTools(httpToolsNode, errors) };
        }

        return errors.Count == before ? agent : null;
    }

    /// <summary>
    /// The shape of <c>httpTools</c> (types and required fields); the rules of a declaration (URL, method, limits,
    /// names) are the silo's, which checks them with those of configuration's HTTP tools when the agent is written.
    /// </summary>
    private static List<HttpToolDefinition>? ReadHttpTools(JsonNode node, Dictionary<string, string[]> errors)
    {
        if (node is not JsonArray array)
        {
            errors["httpTools"] = ["httpTools must be an array of {name, description, url, method, parameters, headers, timeoutSeconds}, or null for none."];
            return null;
        }

        var tools = new List<HttpToolDefinition>();
        for (var i = 0; i < array.Count; i++)
        {
            var prefix = $"httpTools[{i}]";
            if (array[i] is not JsonObject tool)
            {
                errors[prefix] = [$"{prefix} must be an object with name, description and url."];
                continue;
            }

            string? Text(string field, bool required)
            {
                if (tool[field] is not { } value)
                {
                    if (required)
                    {
                        errors[$"{prefix}.{field}"] = [$"{prefix}.{field} is required."];
                    }

                    return null;
                }

                if (TryString(value, out var text))
                {
                    return text;
                }

                errors[$"{prefix}.{field}"] = [$"{prefix}.{field} must be a string."];
                return null;
            }

            foreach (var (field, _) in tool)
            {
                if (field is not ("name" or "description" or "parameters" or "url" or "method" or "headers" or "timeoutSeconds" or "retry" or "maxResponseChars"))
                {
                    errors[$"{prefix}.{field}"] = [$"'{field}' is not a field of an HTTP tool; the fields are name, description, parameters, url, method, headers, timeoutSeconds, retry, maxResponseChars."];
                }
            }

            var name = Text("name", required: true);
            var description = Text("description", required: true);
            var url = Text("url", required: true);
            var method = Text("method", required: false) ?? "GET";

            var parameters = """{"type":"object","properties":{}}""";
            if (tool["parameters"] is { } parametersNode)
            {
                if (parametersNode is JsonObject)
                {
                    parameters = parametersNode.ToJsonString();
                }
                else
                {
                    errors[$"{prefix}.parameters"] = [$"{prefix}.parameters must be a JSON schema object."];
                }
            }

            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (tool["headers"] is { } headersNode)
            {
                if (headersNode is JsonObject headerObject)
                {
                    foreach (var (header, value) in headerObject)
                    {
                        if (value is not null && TryString(value, out var text))
                        {
                            headers[header] = text;
                        }
                        else
                        {
                            errors[$"{prefix}.headers.{header}"] = [$"{prefix}.headers.{header} must be a string."];
                        }
                    }
                }
                else
                {
                    errors[$"{prefix}.headers"] = [$"{prefix}.headers must be an object of header names to strings."];
                }
            }

            var timeout = TimeSpan.FromSeconds(10);
            if (tool["timeoutSeconds"] is { } timeoutNode)
            {
                if (TryDouble(timeoutNode, out var seconds) && seconds > 0 && seconds <= TimeSpan.MaxValue.TotalSeconds / 2)
                {
                    timeout = TimeSpan.FromSeconds(seconds);
                }
                else
                {
                    errors[$"{prefix}.timeoutSeconds"] = [$"{prefix}.timeoutSeconds must be a number of seconds."];
                }
            }

            bool? retry = null;
            if (tool["retry"] is { } retryNode)
            {
                if (retryNode.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                {
                    retry = retryNode.GetValue<bool>();
                }
                else
                {
                    errors[$"{prefix}.retry"] = [$"{prefix}.retry must be true or false."];
                }
            }

            var maxChars = 16_000;
            if (tool["maxResponseChars"] is { } charsNode && !TryInt(charsNode, out maxChars))
            {
                errors[$"{prefix}.maxResponseChars"] = [$"{prefix}.maxResponseChars must be a whole number."];
            }

            if (name is not null && description is not null && url is not null)
            {
                tools.Add(new HttpToolDefinition(name, description, parameters, url, method, headers, timeout) { Retry = retry, MaxResponseChars = maxChars });
            }
        }

        return tools;
    }

    private static List<ClientToolDefinition>? ReadClientTools(JsonNode node, ModelCatalog catalog, Dictionary<string, string[]> errors)
    {
        if (node is not JsonArray array)
        {
            errors["clientTools"] = ["clientTools must be an array of {name, description, parameters}, or null for none."];
            return null;
        }

        var tools = new List<ClientToolDefinition>();
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject tool)
            {
                errors[$"clientTools[{i}]"] = [$"clientTools[{i}] must be an object with name, description and parameters."];
                continue;
            }

            var name = tool["name"] is { } nameNode && TryString(nameNode, out var text) ? text : null;
            if (name is null || !ClientToolName().IsMatch(name))
            {
                errors[$"clientTools[{i}].name"] = [$"clientTools[{i}].name must be 1-64 letters, digits, '_' or '-'."];
            }
            else if (catalog.Tools.Contains(name, StringComparer.Ordinal) || tools.Any(t => t.Name == name))
            {
                errors[$"clientTools[{i}].name"] = [$"clientTools[{i}].name: '{name}' is taken (a server tool, or another client tool of the agent)."];
            }

            string? description = null;
            if (tool["description"] is { } descriptionNode && !TryString(descriptionNode, out description))
            {
                errors[$"clientTools[{i}].description"] = [$"clientTools[{i}].description must be a string."];
            }

            var parameters = """{"type":"object","properties":{}}""";
            if (tool["parameters"] is { } parametersNode)
            {
                if (parametersNode is JsonObject)
                {
                    parameters = parametersNode.ToJsonString();
                }
                else
                {
                    errors[$"clientTools[{i}].parameters"] = [$"clientTools[{i}].parameters must be a JSON schema object."];
                }
            }

            if (name is not null)
            {
                tools.Add(new ClientToolDefinition(name, description ?? "", parameters));
            }
        }

        return tools;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex ClientToolName();

    private static List<string>? ReadTools(JsonNode node, ModelCatalog catalog, ModelInfo? model, Dictionary<string, string[]> errors)
    {
        if (node is not JsonArray array)
        {
            errors["tools"] = ["tools must be an array of tool names, or null for every tool."];
            return null;
        }

        var tools = new List<string>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not { } item || !TryString(item, out var tool))
            {
                errors[$"tools[{i}]"] = [$"tools[{i}] must be a tool's name."];
            }
            else if (!catalog.Tools.Contains(tool, StringComparer.Ordinal))
            {
                errors[$"tools[{i}]"] = [$"tools[{i}]: no tool is named '{tool}'; available: {string.Join(", ", catalog.Tools)}."];
            }
            else if (tools.Contains(tool, StringComparer.Ordinal))
            {
                errors[$"tools[{i}]"] = [$"tools[{i}]: '{tool}' is listed twice."];
            }
            else
            {
                tools.Add(tool);
            }
        }

        if (tools.Count > 0 && model is { SupportsTools: false })
        {
            errors["tools"] = [$"tools: model '{model.Name}' cannot call tools; leave tools empty, or choose another model."];
        }

        return tools;
    }

    private static bool TryString(JsonNode node, out string value)
    {
        value = "";
        return node is JsonValue json && json.GetValueKind() == JsonValueKind.String && json.TryGetValue(out value!);
    }

    private static bool TryInt(JsonNode node, out int value)
    {
        value = 0;
        return node is JsonValue json && json.GetValueKind() == JsonValueKind.Number && json.TryGetValue(out value);
    }

    private static bool TryDouble(JsonNode node, out double value)
    {
        value = 0;
        return node is JsonValue json && json.GetValueKind() == JsonValueKind.Number && json.TryGetValue(out value) && double.IsFinite(value);
    }

    /// <summary><c>max_tokens</c> → <c>maxTokens</c>.</summary>
    private static string ToCamelCase(string field)
    {
        var parts = field.Split('_', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 0
            ? field
            : string.Concat(parts.Select((part, i) => i == 0 ? part.ToLowerInvariant() : string.Concat(char.ToUpperInvariant(part[0]).ToString(), part[1..].ToLowerInvariant())));
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NamePattern();
}
