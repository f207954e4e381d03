using System.Text.Json;

namespace Conversations.Grains.Tools;

/// <summary>A tool the model may call.</summary>
public interface ITool
{
    /// <summary>Name, description and JSON schema of the parameters, as the model is told.</summary>
    ToolDefinition Definition { get; }

    /// <summary>
    /// Runs the tool on the model's arguments (a JSON object) and returns the result text the model reads.
    /// Throws <see cref="ToolException"/> for bad arguments or a failure the model should be told of.
    /// </summary>
    ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default);
}

/// <summary>How a tool is described to the model.</summary>
/// <param name="Name">The function name.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="ParametersSchema">A JSON schema of the arguments object.</param>
public sealed record ToolDefinition(string Name, string Description, JsonElement ParametersSchema);

/// <summary>A tool failed in a way the model should be told of; the message is the tool result it reads.</summary>
public sealed class ToolException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>The tools the agent loop can call, by name.</summary>
public sealed class ToolRegistry
{
    private readonly Dictionary<string, ITool> _tools;

    public ToolRegistry(IEnumerable<ITool> tools)
    {
        _tools = new Dictionary<string, ITool>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (!_tools.TryAdd(tool.Definition.Name, tool))
            {
                throw new ArgumentException($"Two tools are named '{tool.Definition.Name}'.", nameof(tools));
            }
        }
    }

    public IEnumerable<ITool> All => _tools.Values;

    public ITool? Find(string name) => _tools.GetValueOrDefault(name);

    /// <summary>The tools an agent may use: the named ones that exist, or all when <paramref name="names"/> is null.</summary>
    public IReadOnlyList<ITool> Select(IReadOnlyList<string>? names) =>
        names is null ? [.. _tools.Values] : [.. names.Select(Find).OfType<ITool>()];
}
