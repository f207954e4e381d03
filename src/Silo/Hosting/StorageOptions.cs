using System.ComponentModel.DataAnnotations;

namespace Conversations.Silo.Hosting;

/// <summary>Where embedded state lives.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>The SQLite file of the embedded mode; relative paths are under the content root.</summary>
    [Required]
    public string SqlitePath { get; set; } = "data/conversations.db";
}
