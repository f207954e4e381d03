using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Conversations.Bench;

/// <summary>
/// A server process the bench started: its output goes to a log file, its CPU time and memory come from /proc, and
/// disposing it ends it (closing its stdin, then SIGTERM, then SIGKILL).
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    /// <summary>The line a child of ours prints once it listens, followed by its URL.</summary>
    public const string ListeningPrefix = "LISTENING ";

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _listenMarker;

    private ChildProcess(string name, Process process, StreamWriter log, string listenMarker)
    {
        Name = name;
        _process = process;
        _log = log;
        _listenMarker = listenMarker;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    /// <summary>
    /// Starts <c>dotnet {arguments}</c> and waits until its output names the URL it listens on: after
    /// <paramref name="listenMarker"/> (ours print <see cref="ListeningPrefix"/>; ASP.NET Core logs "Now listening on: ").
    /// </summary>
    public static async Task<(ChildProcess Process, Uri Url)> StartAsync(
        string name,
        IEnumerable<string> arguments,
        string workingDirectory,
        IReadOnlyDictionary<string, string> environment,
        string logPath,
        string listenMarker,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var log = new StreamWriter(logPath, append: false, Encoding.UTF8) { AutoFlush = true };
        var process = Process.Start(info) ?? throw new InvalidOperationException($"dotnet did not start for {name}.");
        var child = new ChildProcess(name, process, log, listenMarker);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var exited = process.WaitForExitAsync(cancellationToken);
            var listening = child._listening.Task;
            var timeout = Task.Delay(TimeSpan.FromSeconds(120), cancellationToken);
            var first = await Task.WhenAny(listening, exited, timeout);
            if (first != listening)
            {
                throw new InvalidOperationException($"{name} did not start listening ({(first == exited ? $"it exited with {SafeExitCode(process)}" : "timed out")}); see {logPath}.");
            }

            return (child, new Uri(await listening));
        }
        catch
        {
            await child.DisposeAsync();
            throw;
        }
    }

    /// <summary>User plus system CPU seconds the process has used so far (/proc/{pid}/stat).</summary>
    public double CpuSeconds() => ProcStats.CpuSeconds(Pid);

    /// <summary>Resident memory in bytes (VmRSS).</summary>
    public long RssBytes() => ProcStats.RssBytes(Pid);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                _ = ProcStats.Signal(Pid, "TERM");
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await _process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Not started or already reaped.
        }

        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        var at = line.IndexOf(_listenMarker, StringComparison.Ordinal);
        if (at >= 0)
        {
            _listening.TrySetResult(line[(at + _listenMarker.Length)..].Trim());
        }
    }

    private static string SafeExitCode(Process process) =>
        process.HasExited ? process.ExitCode.ToString(CultureInfo.InvariantCulture) : "?";
}

/// <summary>Numbers of a process from /proc.</summary>
public static class ProcStats
{
    private static readonly double TicksPerSecond = ReadClockTicks();

    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // Fields after the command (which is in parentheses and may hold spaces): state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var user = long.Parse(fields[11], CultureInfo.InvariantCulture);
        var system = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (user + system) / TicksPerSecond;
    }

    public static long RssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().ToString().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    public static bool Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        kill?.WaitForExit();
        return kill?.ExitCode == 0;
    }

    private static double ReadClockTicks()
    {
        try
        {
            using var getconf = Process.Start(new ProcessStartInfo("getconf", ["CLK_TCK"]) { RedirectStandardOutput = true, UseShellExecute = false });
            var text = getconf?.StandardOutput.ReadToEnd().Trim();
            getconf?.WaitForExit();
            return double.TryParse(text, CultureInfo.InvariantCulture, out var ticks) && ticks > 0 ? ticks : 100;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return 100;
        }
    }
}
