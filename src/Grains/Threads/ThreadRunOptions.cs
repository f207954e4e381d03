namespace Conversations.Grains.Threads;

/// <summary>What becomes of runs (section <c>Runs</c>).</summary>
public sealed class ThreadRunOptions
{
    public const string SectionName = "Runs";

    /// <summary>
    /// What a thread's next activation does with a run whose activation was lost (its silo died) before it ended:
    /// <see cref="LostRunPolicies.Resume"/> (default) goes on from the last recorded step, with a new model call over
    /// the recorded messages and tool results (a recorded tool call never runs again); <see cref="LostRunPolicies.Fail"/>
    /// ends it as <c>run.failed</c> (<c>interrupted</c>).
    /// </summary>
    public string OnLostRun { get; set; } = LostRunPolicies.Resume;

    /// <summary>How many times one run may be resumed; a run lost once more fails as interrupted.</summary>
    public int MaxResumes { get; set; } = 1;

    /// <summary>How long a run waits for a client's output of a client tool call; the call then fails.</summary>
    public TimeSpan ClientToolTimeout { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Values of <see cref="ThreadRunOptions.OnLostRun"/>.</summary>
public static class LostRunPolicies
{
    public const string Resume = "resume";
    public const string Fail = "fail";
}
