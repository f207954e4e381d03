using Conversations.Grains.Abstractions.Monitoring;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Conversations.Grains.Monitoring;

/// <summary>
/// Follows one silo's run-activity stream (an implicit subscription: it activates with the first event) and keeps
/// the silo's active runs, outcome counts, tokens and recent failures in memory for the ops features.
/// </summary>
[GrainType("run-monitor")]
[ImplicitStreamSubscription(RunActivity.StreamNamespace)]
[CollectionAgeLimit(Days = 7)]
public sealed class RunMonitorGrain : Grain, IRunMonitorGrain, IStreamSubscriptionObserver, IAsyncObserver<RunActivity>
{
    private const int RecentFailureCount = 20;

    private readonly Dictionary<string, RunActivity> _active = new(StringComparer.Ordinal);
    private readonly LinkedList<RunActivity> _recentFailures = new();
    private long _started;
    private long _completed;
    private long _failed;
    private long _cancelled;
    private long _promptTokens;
    private long _completionTokens;

    public Task<RunMonitorSnapshot> GetSnapshotAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new RunMonitorSnapshot(
            this.GetPrimaryKeyString(),
            [.. _active.Values.OrderBy(a => a.At)],
            _started,
            _completed,
            _failed,
            _cancelled,
            _promptTokens,
            _completionTokens,
            [.. _recentFailures]));

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<RunActivity>().ResumeAsync(this);

    public Task OnNextAsync(RunActivity item, StreamSequenceToken? token = null)
    {
        switch (item.Kind)
        {
            case RunActivityKinds.Started:
                _started++;
                _active[item.RunId] = item;
                break;
            default:
                _active.Remove(item.RunId);
                _promptTokens += item.Usage?.PromptTokens ?? 0;
                _completionTokens += item.Usage?.CompletionTokens ?? 0;
                if (item.Kind == RunActivityKinds.Completed)
                {
                    _completed++;
                }
                else if (item.Kind == RunActivityKinds.Cancelled)
                {
                    _cancelled++;
                }
                else
                {
                    _failed++;
                    _recentFailures.AddFirst(item);
                    if (_recentFailures.Count > RecentFailureCount)
                    {
                        _recentFailures.RemoveLast();
                    }
                }

                break;
        }

        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
