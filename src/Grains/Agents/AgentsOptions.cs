using System.ComponentModel.DataAnnotations;
using Conversations.Grains.Abstractions.Agents;

namespace Conversations.Grains.Agents;

/// <summary>The <c>Agents</c> configuration section: agent name → settings.</summary>
public sealed class AgentsOptions
{
    public const string SectionName = "Agents";

    public Dictionary<string, AgentSettings> Agents { get; } = new(StringComparer.Ordinal);
}

/// <summary>One agent's settings as configuration gives them.</summary>
public sealed class AgentSettings
{
    public string? Instructions { get; set; }
    public string? Model { get; set; }
    public List<string>? Tools { get; set; }

    [Range(1, 64)]
    public int MaxParallelTools { get; set; } = 4;

    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan ToolTimeout { get; set; } = TimeSpan.FromSeconds(30);

    [Range(1, 100)]
    public int MaxDepth { get; set; } = 8;

    /// <summary>How many tool calls one run may make (<see cref="AgentDefinition.MaxToolCalls"/>).</summary>
    [Range(1, AgentDefinition.MaxToolCallsLimit)]
    public int MaxToolCalls { get; set; } = AgentDefinition.DefaultMaxToolCalls;

    [AllowedValues(MultitaskStrategies.Reject, MultitaskStrategies.Enqueue, MultitaskStrategies.Interrupt, MultitaskStrategies.Rollback, MultitaskStrategies.Steer)]
    public string MultitaskStrategy { get; set; } = MultitaskStrategies.Reject;

    [Range(0.0, 2.0)]
    public double? Temperature { get; set; }

    [Range(1, int.MaxValue)]
    public int? MaxTokens { get; set; }

    /// <summary>Tokens of history one model call may carry; null for no limit.</summary>
    [Range(1, int.MaxValue)]
    public int? HistoryBudget { get; set; }

    /// <summary>Tools the client runs (<see cref="AgentDefinition.ClientTools"/>).</summary>
    public List<ClientToolSettings>? ClientTools { get; set; }

    public AgentDefinition ToDefinition(string name)
    {
        var definition = new AgentDefinition(name)
        {
            Model = Model,
            Tools = Tools,
            MaxParallelTools = MaxParallelTools,
            ToolTimeout = ToolTimeout,
            MaxDepth = MaxDepth,
            MaxToolCalls = MaxToolCalls,
            MultitaskStrategy = MultitaskStrategy,
            Temperature = Temperature,
            MaxTokens = MaxTokens,
            HistoryBudget = HistoryBudget,
            ClientTools = ClientTools?.Select(t => new ClientToolDefinition(t.Name, t.Description ?? "", t.Parameters ?? """{"type":"object","properties":{}}""")).ToList(),
        };
        return Instructions is null ? definition : definition with { Instructions = Instructions };
    }
}

/// <summary>A client tool in configuration (<c>Agents:{name}:ClientTools:{i}</c>).</summary>
public sealed class ClientToolSettings
{
    [Required]
    public string Name { get; set; } = "";

    public string? Description { get; set; }

    /// <summary>The JSON schema of the arguments, as JSON text.</summary>
    public string? Parameters { get; set; }
}
