using System.ComponentModel.DataAnnotations;

namespace Conversations.Gateway.Ops;

/// <summary>Settings of the ops dashboard (section <c>Ops</c>, environment <c>Ops__X</c>).</summary>
public sealed class OpsOptions
{
    public const string SectionName = "Ops";

    /// <summary>
    /// Serve <c>/ops</c> and <c>/ops/orleans</c> outside the Development environment (where they are always served);
    /// otherwise they answer 404.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>How often the dashboard's numbers are taken from the cluster and pushed to it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Ops:RefreshInterval must be between 100 ms and 1 minute.")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often this gateway reports its threads and subscribers to the cluster.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Ops:ReportInterval must be between 100 ms and 1 minute.")]
    public TimeSpan ReportInterval { get; set; } = TimeSpan.FromSeconds(2);
}
