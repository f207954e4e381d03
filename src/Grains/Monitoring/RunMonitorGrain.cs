using Conversations.Grains.Abstractions.Monitoring;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Conversations.Grains.Monitoring;

/// <summary>
/// Follows one silo's run-activity stream (an implicit subscription: it activates with the first event) and keeps
/// the silo's active runs, outcome counts, tokens (with the recent rate), times to first token over the last five
/// minutes, tool calls and recent failures in memory for the ops features.
/// </summary>
[GrainType("run-monitor")]
[ImplicitStreamSubscription(RunActivity.StreamNamespace)]
[CollectionAgeLimit(Days = 7)]
public sealed class RunMonitorGrain(TimeProvider time) : Grain, IRunMonitorGrain, IStreamSubscriptionObserver, IAsyncObserver<RunActivity>
{
    private const int RecentFailureCount = 20;

    private readonly Dictionary<string, RunActivity> _active = new(StringComparer.Ordinal);
    private readonly LinkedList<RunActivity> _recentFailures = new();
    private readonly LinkedList<RunActivity> _recentToolFailures = new();
    private readonly Queue<(DateTimeOffset At, double Milliseconds)> _timesToFirstToken = new();
    private readonly Queue<(DateTimeOffset At, long Tokens)> _tokens = new();
    private long _started;
    private long _completed;
    private long _failed;
    private long _cancelled;
    private long _promptTokens;
    private long _completionTokens;
    private long _toolCalls;
    private long _toolFailures;

    public Task<RunMonitorSnapshot> GetSnapshotAsync(CancellationToken cancellationToken = default)
    {
        Prune(time.GetUtcNow());
        return Task.FromResult(new RunMonitorSnapshot(
            this.GetPrimaryKeyString(),
            [.. _active.Values.OrderBy(a => a.At)],
            _started,
            _completed,
            _failed,
            _cancelled,
            _promptTokens,
            _completionTokens,
            [.. _recentFailures])
        {
            ToolCalls = _toolCalls,
            ToolFailures = _toolFailures,
            RecentToolFailures = [.. _recentToolFailures],
            TimesToFirstTokenMs = [.. _timesToFirstToken.Select(s => s.Milliseconds)],
            RecentTokens = _tokens.Sum(t => t.Tokens),
        });
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<RunActivity>().ResumeAsync(this);

    public Task OnNextAsync(RunActivity item, StreamSequenceToken? token = null)
    {
        var now = time.GetUtcNow();
        switch (item.Kind)
        {
            case RunActivityKinds.Started:
                _started++;
                _active[item.RunId] = item;
                break;
            case RunActivityKinds.FirstToken when item.Duration is { } toFirstToken:
                _timesToFirstToken.Enqueue((now, toFirstToken.TotalMilliseconds));
                break;
            case RunActivityKinds.Tokens:
                _tokens.Enqueue((now, item.Tokens));
                break;
            case RunActivityKinds.ToolCall:
                _toolCalls++;
                if (item.Error is not null)
                {
                    _toolFailures++;
                    Remember(_recentToolFailures, item);
                }

                break;
            case var kind when RunActivityKinds.IsEnd(kind):
                _active.Remove(item.RunId);
                _promptTokens += item.Usage?.PromptTokens ?? 0;
                _completionTokens += item.Usage?.CompletionTokens ?? 0;
                if (kind == RunActivityKinds.Completed)
                {
                    _completed++;
                }
                else if (kind == RunActivityKinds.Cancelled)
                {
                    _cancelled++;
                }
                else
                {
                    _failed++;
                    Remember(_recentFailures, item);
                }

                break;
        }

        Prune(now);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    private static void Remember(LinkedList<RunActivity> recent, RunActivity item)
    {
        recent.AddFirst(item);
        if (recent.Count > RecentFailureCount)
        {
            recent.RemoveLast();
        }
    }

    private void Prune(DateTimeOffset now)
    {
        while (_timesToFirstToken.Count > 0
            && (_timesToFirstToken.Count > RunMonitorWindows.MaxSamples || now - _timesToFirstToken.Peek().At > RunMonitorWindows.TimeToFirstToken))
        {
            _timesToFirstToken.Dequeue();
        }

        while (_tokens.Count > 0 && now - _tokens.Peek().At > RunMonitorWindows.TokenRate)
        {
            _tokens.Dequeue();
        }
    }
}
