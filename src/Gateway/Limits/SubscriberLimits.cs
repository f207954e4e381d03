using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using Conversations.Gateway.Auth;
using Microsoft.Extensions.Options;

namespace Conversations.Gateway.Limits;

/// <summary>
/// How many event streams one gateway holds open (section <c>Limits</c>): per thread and per caller (the
/// authenticated user or key, else the remote address). On by default only when authentication is on
/// (<see cref="SubscriberLimitsEnabled"/>): an open server listens on loopback only, where the one local user (a
/// benchmark's thousand watchers of one thread, tests' fan-outs) shares one address.
/// </summary>
public sealed class SubscriberLimitsOptions
{
    public const string PerThreadSetting = "Limits:MaxSubscribersPerThread";
    public const string PerCallerSetting = "Limits:MaxSubscribersPerCaller";

    /// <summary>Event streams of one thread open on this gateway: 100.</summary>
    [Range(1, 1_000_000)]
    public int MaxSubscribersPerThread { get; set; } = 100;

    /// <summary>Event streams of one caller open on this gateway: 50.</summary>
    [Range(1, 1_000_000)]
    public int MaxSubscribersPerCaller { get; set; } = 50;

    /// <summary>On or off; null (the default) for on exactly when authentication is configured.</summary>
    public bool? SubscriberLimitsEnabled { get; set; }

    /// <summary>The Retry-After of a refused stream, in seconds: 5.</summary>
    [Range(1, 3600)]
    public int SubscriberRetryAfterSeconds { get; set; } = 5;
}

/// <summary>Counts the event streams this gateway holds open, by thread and by caller; refuses those over the limits.</summary>
public sealed class SubscriberLimits(IOptions<SubscriberLimitsOptions> options, IOptions<AuthOptions> auth)
{
    private readonly ConcurrentDictionary<string, int> _byThread = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _byCaller = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    private SubscriberLimitsOptions Limits => options.Value;

    private bool Enabled => Limits.SubscriberLimitsEnabled ?? auth.Value.Enabled;

    /// <summary>
    /// Takes a place for a stream of <paramref name="threadId"/> for the request's caller, released when the request
    /// ends; or the 429 ProblemDetails that refuses it.
    /// </summary>
    public IResult? TryEnter(HttpContext context, string threadId)
    {
        if (!Enabled)
        {
            return null;
        }

        var caller = RateLimitsExtensions.PartitionOf(context);
        lock (_gate)
        {
            var onThread = _byThread.GetValueOrDefault(threadId);
            var ofCaller = _byCaller.GetValueOrDefault(caller);
            if (onThread >= Limits.MaxSubscribersPerThread)
            {
                return Refuse(context, SubscriberLimitsOptions.PerThreadSetting, Limits.MaxSubscribersPerThread,
                    $"Thread '{threadId}' has {onThread} event streams open on this server; at most {Limits.MaxSubscribersPerThread} are allowed ({SubscriberLimitsOptions.PerThreadSetting}).");
            }

            if (ofCaller >= Limits.MaxSubscribersPerCaller)
            {
                return Refuse(context, SubscriberLimitsOptions.PerCallerSetting, Limits.MaxSubscribersPerCaller,
                    $"This caller has {ofCaller} event streams open on this server; at most {Limits.MaxSubscribersPerCaller} are allowed ({SubscriberLimitsOptions.PerCallerSetting}). Close one first.");
            }

            _byThread[threadId] = onThread + 1;
            _byCaller[caller] = ofCaller + 1;
        }

        context.Response.RegisterForDispose(new Place(this, threadId, caller));
        return null;
    }

    /// <summary>Streams open now of <paramref name="threadId"/> (for tests and ops).</summary>
    public int OpenOn(string threadId) => _byThread.GetValueOrDefault(threadId);

    private void Leave(string threadId, string caller)
    {
        lock (_gate)
        {
            Decrement(_byThread, threadId);
            Decrement(_byCaller, caller);
        }
    }

    private static void Decrement(ConcurrentDictionary<string, int> counts, string key)
    {
        if (counts.TryGetValue(key, out var count))
        {
            if (count <= 1)
            {
                counts.TryRemove(key, out _);
            }
            else
            {
                counts[key] = count - 1;
            }
        }
    }

    private IResult Refuse(HttpContext context, string setting, int maximum, string detail)
    {
        context.Response.Headers.RetryAfter = Limits.SubscriberRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            detail,
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many event streams.",
            extensions: new Dictionary<string, object?> { ["limit"] = setting, ["maximum"] = maximum });
    }

    private sealed class Place(SubscriberLimits owner, string threadId, string caller) : IDisposable
    {
        private int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0)
            {
                owner.Leave(threadId, caller);
            }
        }
    }
}
