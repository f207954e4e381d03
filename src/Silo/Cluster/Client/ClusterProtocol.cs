using System.Globalization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Cluster.Client;

/// <summary>The wire names of the silos' internal endpoints (docs: cluster contract), shared by both sides.</summary>
public static class ClusterProtocol
{
    /// <summary>The header that carries the cluster key on every internal request.</summary>
    public const string ClusterKeyHeader = "X-Cluster-Key";

    /// <summary>The PostgreSQL channel a silo notifies, with the thread id as payload, after it activates a thread.</summary>
    public const string ThreadActivatedChannel = "thread_activated";

    /// <summary>The <c>{method}</c> values of <c>POST /internal/threads/{threadId}/calls/{method}</c>.</summary>
    public static class Methods
    {
        public const string Create = "create";
        public const string Get = "get";
        public const string Messages = "messages";
        public const string Send = "send";
        public const string Append = "append";
        public const string Cancel = "cancel";
        public const string Run = "run";
    }

    /// <summary>The path of a grain call, relative to a silo's address.</summary>
    public static string CallPath(string threadId, string method) =>
        $"internal/threads/{Uri.EscapeDataString(threadId)}/calls/{method}";

    /// <summary>The path of a thread's event stream after <paramref name="afterSequence"/>, relative to a silo's address.</summary>
    public static string EventsPath(string threadId, long afterSequence) =>
        $"internal/threads/{Uri.EscapeDataString(threadId)}/events?after={afterSequence.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A silo's address as a base URI that relative paths extend (a trailing '/' is added when missing).</summary>
    public static Uri BaseUri(string address) => new(address.EndsWith('/') ? address : address + "/", UriKind.Absolute);
}

/// <summary>The body of a 421 Misdirected Request: the silo that holds the thread's lease.</summary>
public sealed record OwnerRedirect(string OwnerSiloId, string OwnerAddress);

/// <summary>The body of the events endpoint's 404: nobody holds the thread's activation.</summary>
public sealed record ThreadNotActive(bool Active);

/// <summary>The body of the <c>append</c> call.</summary>
public sealed record AppendMessagesCall(IReadOnlyList<NewMessage> Messages);

/// <summary>The body of the <c>cancel</c> and <c>run</c> calls.</summary>
public sealed record RunIdCall(string RunId);
