using System.Text.Json;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Tools.Http;

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

/// <summary>
/// Tools that are not known when the silo starts, or that come and go: those of MCP servers (listed when the server is
/// reached) and those declared in configuration. <see cref="Tools"/> is a snapshot, read at every lookup.
/// </summary>
public interface IToolSource
{
    /// <summary>The tools this source offers now.</summary>
    IReadOnlyList<ITool> Tools { get; }
}

/// <summary>
/// The tools the agent loop can call, by name: the built-ins (fixed, unique names) first, then each
/// <see cref="IToolSource"/>'s current tools in registration order. A source's tool whose name an earlier tool already
/// has is hidden (the sources keep their names apart: see the HTTP tools' and MCP servers' settings).
/// </summary>
public sealed class ToolRegistry
{
    private readonly Dictionary<string, ITool> _tools;
    private readonly IReadOnlyList<IToolSource> _sources;
    private readonly Func<HttpToolSpec, ITool>? _httpTool;

    public ToolRegistry(IEnumerable<ITool> tools)
        : this(tools, [])
    {
    }

    /// <param name="tools">The built-ins.</param>
    /// <param name="sources">Sources of tools that come and go.</param>
    /// <param name="httpTool">Builds an agent's own HTTP tool (<see cref="AgentDefinition.HttpTools"/>); null where agents declare none.</param>
    public ToolRegistry(IEnumerable<ITool> tools, IEnumerable<IToolSource> sources, Func<HttpToolSpec, ITool>? httpTool = null)
    {
        _httpTool = httpTool;
        _tools = new Dictionary<string, ITool>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (!_tools.TryAdd(tool.Definition.Name, tool))
            {
                throw new ArgumentException($"Two tools are named '{tool.Definition.Name}'.", nameof(tools));
            }
        }

        _sources = [.. sources];
    }

    /// <summary>Every tool, each name once.</summary>
    public IEnumerable<ITool> All
    {
        get
        {
            if (_sources.Count == 0)
            {
                return _tools.Values;
            }

            var all = new Dictionary<string, ITool>(_tools, StringComparer.Ordinal);
            foreach (var source in _sources)
            {
                foreach (var tool in source.Tools)
                {
                    all.TryAdd(tool.Definition.Name, tool);
                }
            }

            return all.Values;
        }
    }

    public ITool? Find(string name)
    {
        if (_tools.TryGetValue(name, out var tool))
        {
            return tool;
        }

        foreach (var source in _sources)
        {
            foreach (var candidate in source.Tools)
            {
                if (string.Equals(candidate.Definition.Name, name, StringComparison.Ordinal))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>The tools an agent may use: the named ones that exist, or all when <paramref name="names"/> is null.</summary>
    public IReadOnlyList<ITool> Select(IReadOnlyList<string>? names) =>
        names is null ? [.. All] : [.. names.Select(Find).OfType<ITool>()];

    /// <summary>
    /// The tools a run of <paramref name="agent"/> may call: <see cref="Select"/> of its <see cref="AgentDefinition.Tools"/>,
    /// then its own HTTP tools (<see cref="AgentDefinition.HttpTools"/>). An own tool whose name another tool already
    /// has is hidden, as a source's is (the agents API refuses such names; configuration may add one later).
    /// </summary>
    public IReadOnlyList<ITool> ForAgent(AgentDefinition agent)
    {
        var selected = Select(agent.Tools);
        if (agent.HttpTools is not { Count: > 0 } declared || _httpTool is null)
        {
            return selected;
        }

        var names = selected.Select(t => t.Definition.Name).ToHashSet(StringComparer.Ordinal);
        var all = new List<ITool>(selected);
        foreach (var definition in declared)
        {
            if (Find(definition.Name) is null && names.Add(definition.Name) && HttpToolDeclaration.ToSpec(definition) is { } spec)
            {
                all.Add(_httpTool(spec));
            }
        }

        return all;
    }
}
