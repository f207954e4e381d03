using System.Security.Cryptography;
using System.Text;

namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>
/// The run queue's notification channels: <c>run_requests</c> (payload: a thread id; sent when a request is enqueued
/// or put back) and <c>run_request_done</c> (payload: a run id; sent when a result is stored or a request is
/// cancelled). Channels are database-wide, not per schema, so with a schema they are qualified by it
/// (<c>&lt;schema&gt;.run_requests</c>): clusters (and tests) sharing a database do not wake each other.
/// </summary>
internal sealed record RunQueueChannels(string Requests, string Done)
{
    public const string RequestsName = "run_requests";
    public const string DoneName = "run_request_done";

    // A channel name is an identifier: at most 63 bytes.
    private const int MaxLength = 63;

    public static RunQueueChannels For(string? schema) => new(Qualify(schema, RequestsName), Qualify(schema, DoneName));

    private static string Qualify(string? schema, string name)
    {
        if (schema is null)
        {
            return name;
        }

        var qualified = $"{schema}.{name}";
        if (qualified.Length <= MaxLength)
        {
            return qualified;
        }

        // A long schema name: keep a prefix of it and a hash of all of it, so the name stays unique and short.
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(schema)))[..8];
        return $"{schema[..(MaxLength - name.Length - hash.Length - 2)]}~{hash}.{name}";
    }
}
