using System.Globalization;
using System.Net;
using Conversations.Tests.Gateway;

namespace Conversations.Tests.Processes;

/// <summary>
/// The host's appsettings reload watches the content root with its subfolders; the embedded SQLite files live in a
/// folder there, so each database write woke it. A real gateway process, its inotify watches read from /proc: the
/// database's folder is not among them by default, and is when reloading is asked for (which shows the check sees it).
/// </summary>
public sealed class ConfigurationWatchTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_database_folder_under_the_content_root_is_not_watched_unless_configuration_reload_is_asked_for()
    {
        // The gateway's content root is its working directory: the test's output folder.
        var folder = Path.Combine(AppContext.BaseDirectory, "watch-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            var environment = new Dictionary<string, string?>
            {
                ["Storage__SqlitePath"] = Path.Combine(folder, "conversations.db"),
                ["DemoModel__TokenDelay"] = "00:00:00",
            };
            var folderInode = Inode(folder);

            await using (var gateway = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                var threadId = await gateway.Client.CreateThreadAsync(cancellationToken: Guard);
                using var sent = await gateway.Client.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "What is 2 + 2?" }, Guard);
                Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
                Assert.True(File.Exists(Path.Combine(folder, "conversations.db")));
                Assert.DoesNotContain(folderInode, WatchedInodes(gateway.ProcessId));
            }

            environment["DOTNET_hostBuilder__reloadConfigOnChange"] = "true";
            await using (var reloading = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                var watched = await TestTimeouts.EventuallyAsync(() => Task.FromResult(WatchedInodes(reloading.ProcessId)), w => w.Contains(folderInode));
                Assert.Contains(folderInode, watched);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static ulong Inode(string path)
    {
        var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        var text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return ulong.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>The inodes every inotify instance of the process watches (lines "inotify wd:… ino:HEX …" of /proc/PID/fdinfo).</summary>
    private static HashSet<ulong> WatchedInodes(int processId)
    {
        var inodes = new HashSet<ulong>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{processId}/fd"))
        {
            var target = new FileInfo(fd).LinkTarget;
            if (target != "anon_inode:inotify")
            {
                continue;
            }

            foreach (var line in File.ReadLines($"/proc/{processId}/fdinfo/{Path.GetFileName(fd)}"))
            {
                if (!line.StartsWith("inotify ", StringComparison.Ordinal))
                {
                    continue;
                }

                var field = line.Split(' ').First(f => f.StartsWith("ino:", StringComparison.Ordinal));
                inodes.Add(ulong.Parse(field["ino:".Length..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }

        return inodes;
    }
}
