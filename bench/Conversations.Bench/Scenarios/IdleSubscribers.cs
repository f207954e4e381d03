using System.Net.Sockets;
using System.Text;

namespace Conversations.Bench.Scenarios;

/// <summary>Memory of the server for N idle threads, N idle SSE subscribers (one per thread) and N bare keep-alive connections.</summary>
public sealed record IdleRow(
    int N, long RssBeforeBytes, long RssThreadsBytes, long RssSubscribersBytes, long RssConnectionsBytes,
    double KiBPerIdleThread, double KiBPerSubscriber, double KiBPerBareConnection);

/// <summary>
/// Scenario 3b: the server's resident memory (VmRSS, summed over its processes) before, after creating N threads
/// (each an active, idle grain), after opening <c>GET /threads/{id}/events</c> on each (idle SSE subscribers), and
/// after N more plain HTTP/1.1 keep-alive connections that made one <c>GET /health</c> each. Each step waits for the
/// numbers to settle. RSS moves with the garbage collector, so small N say little.
/// </summary>
public static class IdleSubscribers
{
    public static async Task<IReadOnlyList<IdleRow>> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var rows = new List<IdleRow>();
        foreach (var n in context.Options.Idle)
        {
            var before = await SettledRssAsync(context, cancellationToken);
            var threads = new List<string>(n);
            for (var i = 0; i < n; i++)
            {
                threads.Add(await context.Client.CreateThreadAsync(context.Server.Gateway, cancellationToken));
            }

            var withThreads = await SettledRssAsync(context, cancellationToken);
            var watchers = new List<HttpResponseMessage>(n);
            var bare = new List<Socket>(n);
            try
            {
                for (var i = 0; i < n; i++)
                {
                    watchers.Add(await context.Client.WatchAsync(context.Server.Gateway, threads[i], cancellationToken));
                }

                var withSubscribers = await SettledRssAsync(context, cancellationToken);

                // The bare connections come on top of the subscribers' in both processes; past the open-files limit
                // (20,000 here, not raisable) that baseline is not taken rather than failing the run.
                var withConnections = long.MinValue;
                if ((2L * n) + 1000 < OpenFilesLimit())
                {
                    for (var i = 0; i < n; i++)
                    {
                        bare.Add(await KeepAliveAsync(context.Server.Gateway, cancellationToken));
                    }

                    withConnections = await SettledRssAsync(context, cancellationToken);
                }

                var row = new IdleRow(
                    n, before, withThreads, withSubscribers, withConnections,
                    (withThreads - before) / 1024.0 / n, (withSubscribers - withThreads) / 1024.0 / n, withConnections == long.MinValue ? double.NaN : (withConnections - withSubscribers) / 1024.0 / n);
                Console.WriteLine($"    idle N={n}: {row.KiBPerIdleThread:F1} KiB/thread, {row.KiBPerSubscriber:F1} KiB/subscriber, {row.KiBPerBareConnection:F1} KiB/bare connection");
                rows.Add(row);
            }
            finally
            {
                foreach (var watcher in watchers)
                {
                    watcher.Dispose();
                }

                foreach (var socket in bare)
                {
                    socket.Dispose();
                }
            }

            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        }

        return rows;
    }

    /// <summary>This process's soft limit of open files (/proc/self/limits); the server inherits it.</summary>
    private static long OpenFilesLimit()
    {
        var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: >= 4 } && long.TryParse(fields[3], System.Globalization.CultureInfo.InvariantCulture, out var limit) ? limit : long.MaxValue;
    }

    /// <summary>VmRSS once two readings 2 s apart differ by less than 1 % (at most 20 s).</summary>
    private static async Task<long> SettledRssAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var previous = context.Server.RssBytes();
        for (var i = 0; i < 10; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            var now = context.Server.RssBytes();
            if (Math.Abs(now - previous) < previous / 100)
            {
                return now;
            }

            previous = now;
        }

        return previous;
    }

    private static async Task<Socket> KeepAliveAsync(Uri gateway, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(gateway.Host, gateway.Port, cancellationToken);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET /health HTTP/1.1\r\nHost: {gateway.Authority}\r\n\r\n"), cancellationToken);
        var buffer = new byte[4096];
        var received = new StringBuilder();
        while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return socket;
    }
}
