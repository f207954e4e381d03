namespace Conversations.Grains.Abstractions.Agents;

/// <summary>
/// An agent as the agents API manages it: its definition, where it comes from, and its version (the ETag of
/// <c>If-Match</c>). A version increases with every write through the API, deletes included, and is never reused for
/// a name; an agent that only configuration declares has version 0.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.AgentResource")]
public sealed record AgentResource([Id(0)] AgentDefinition Definition, [Id(1)] long Version)
{
    /// <summary><see cref="AgentSources.Configuration"/> or <see cref="AgentSources.Api"/>: which of the two the definition is.</summary>
    [Id(2)]
    public string Source { get; init; } = AgentSources.Configuration;

    /// <summary>True when configuration declares an agent of this name (an API edit overrides it).</summary>
    [Id(3)]
    public bool Configured { get; init; }

    /// <summary>When the API first wrote the agent (since its last delete); null for an agent only configuration declares.</summary>
    [Id(4)]
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>When the API last wrote the agent; null for an agent only configuration declares.</summary>
    [Id(5)]
    public DateTimeOffset? UpdatedAt { get; init; }

    public string Name => Definition.Name;
}

public static class AgentSources
{
    /// <summary>The agent is as configuration (<c>Agents:{name}</c>, or the built-in <c>default</c>) declares it.</summary>
    public const string Configuration = "configuration";

    /// <summary>The agent was created or last written through the API; that write wins over configuration.</summary>
    public const string Api = "api";
}

/// <summary>The answer to a write of the agent catalog.</summary>
[GenerateSerializer, Immutable, Alias("conv.AgentWriteResult")]
public abstract record AgentWriteResult
{
    private AgentWriteResult() { }

    /// <summary>The agent was stored; <paramref name="Created"/> when no agent of that name existed.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.Saved")]
    public sealed record Saved([Id(0)] AgentResource Agent, [Id(1)] bool Created) : AgentWriteResult;

    /// <summary>The agent was deleted: a tombstone of this version hides it (configuration's too) until it is created again.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.Deleted")]
    public sealed record Deleted([Id(0)] string Name, [Id(1)] long Version) : AgentWriteResult;

    /// <summary>No agent of that name exists (or it was deleted).</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.NotFound")]
    public sealed record NotFound([Id(0)] string Name) : AgentWriteResult;

    /// <summary>A create found an agent of that name.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.AlreadyExists")]
    public sealed record AlreadyExists([Id(0)] AgentResource Current) : AgentWriteResult;

    /// <summary>The agent's version is not the one the write expected; nothing changed.</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.VersionMismatch")]
    public sealed record VersionMismatch([Id(0)] AgentResource Current) : AgentWriteResult;

    /// <summary>
    /// The agent breaks a rule only the silo can check (its HTTP tools' declarations); each error is keyed by the
    /// field (<c>httpTools[0].url</c>) and its message names it. Nothing changed.
    /// </summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.Invalid")]
    public sealed record Invalid([Id(0)] Dictionary<string, string[]> Errors) : AgentWriteResult;

    /// <summary>The agent cannot be deleted (the <c>default</c> agent).</summary>
    [GenerateSerializer, Immutable, Alias("conv.AgentWriteResult.Protected")]
    public sealed record Protected([Id(0)] string Name, [Id(1)] string Reason) : AgentWriteResult;
}
