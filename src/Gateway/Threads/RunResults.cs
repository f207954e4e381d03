using Conversations.Grains.Abstractions.Events;

namespace Conversations.Gateway.Threads;

/// <summary>Folds a run's events into the JSON result of a non-streaming request.</summary>
public static class RunResults
{
    public static async Task<RunResultResponse> CollectAsync(
        string threadId, string runId, IAsyncEnumerable<ThreadEvent> events, CancellationToken cancellationToken)
    {
        RunMessage? message = null;
        var calls = new List<RunToolCall>();
        await foreach (var threadEvent in events.WithCancellation(cancellationToken))
        {
            if (threadEvent.RunId != runId)
            {
                continue;
            }

            switch (threadEvent)
            {
                case MessageCompleted completed:
                    message = new RunMessage(completed.MessageId, completed.Role, completed.Content, completed.FinishReason, completed.Status);
                    break;
                case ToolCallCompleted done:
                    calls.Add(new RunToolCall(done.CallId, done.Name, done.Arguments, done.Result, null, done.DurationMs));
                    break;
                case ToolCallFailed failed:
                    calls.Add(new RunToolCall(failed.CallId, failed.Name, failed.Arguments, null, failed.Error, failed.DurationMs));
                    break;
                case RunCompleted end:
                    return new RunResultResponse(runId, threadId, "completed", message, calls, end.Usage, null, end.StopReason);
                case RunFailed end:
                    return new RunResultResponse(runId, threadId, "failed", message, calls, end.Usage, end.Error, null);
                case RunCancelled end:
                    return new RunResultResponse(runId, threadId, "cancelled", message, calls, end.Usage, null, null);
            }
        }

        throw new InvalidOperationException($"The event stream of thread '{threadId}' ended before run '{runId}' did.");
    }
}
