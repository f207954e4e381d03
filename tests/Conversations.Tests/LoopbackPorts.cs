using System.Net;
using System.Net.Sockets;

namespace Conversations.Tests;

/// <summary>
/// Ports for listeners a test starts later (silos, node processes, a server that comes up mid-test). A port the OS
/// hands out for port 0 and frees again lies in the ephemeral range, where the next outgoing connection (to
/// PostgreSQL, to a silo) may take it before the listener binds — CI saw "Address already in use" that way. These come
/// from below that range (and below the 20000–32767 band tests/run.sh picks PostgreSQL's port from), each handed out
/// once per test run, and only after a bind shows no one holds it.
/// </summary>
public static class LoopbackPorts
{
    private const int Low = 10000;
    private const int High = 20000;
    private static int _next = Low + Environment.ProcessId % 5000;

    public static int Next()
    {
        for (var attempt = 0; attempt < High - Low; attempt++)
        {
            var candidate = Low + (Interlocked.Increment(ref _next) - Low) % (High - Low);
            if (IsFree(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"No free port on 127.0.0.1 between {Low} and {High}.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
