using System.Diagnostics;

namespace Conversations.Tests.Processes;

/// <summary>Runs the repository's own scripts (deploy/*.sh, deploy/*.py) as real processes and collects their output.</summary>
internal static class RepositoryScripts
{
    /// <summary>The checkout's root: the first folder above the test binaries that holds Conversations.sln.</summary>
    public static string Root()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Conversations.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("The repository root was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs <paramref name="program"/> with <paramref name="arguments"/> in <paramref name="root"/>; returns its exit code and stdout + stderr.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string root, string program, IEnumerable<string> arguments, IDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(program) { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await stdout + await stderr);
    }
}
