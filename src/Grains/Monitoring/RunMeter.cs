using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Monitoring;

namespace Conversations.Grains.Monitoring;

/// <summary>
/// Watches one run's events as they are published and says what the run monitor should hear of them: the time to
/// the run's first output, completion tokens as they stream (about once a second), and each tool call that ended.
/// Tokens are estimated at four characters each while a message streams and corrected to the model's count when
/// the message completes, so their sum is the model's count.
/// </summary>
public sealed class RunMeter(RunActivity started, Func<DateTimeOffset> clock)
{
    private const int CharactersPerToken = 4;
    private const int MaxErrorLength = 300;
    private static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(1);

    private readonly DateTimeOffset _startedAt = clock();
    private DateTimeOffset _lastReport = clock();
    private bool _firstToken;
    private long _pendingCharacters;
    private long _reportedForMessage;

    /// <summary>The activity to report for <paramref name="threadEvent"/>, if any.</summary>
    public RunActivity? Observe(ThreadEvent threadEvent)
    {
        var now = clock();
        switch (threadEvent)
        {
            case TextDelta delta:
                return Streamed(delta.Text.Length, now);
            case ToolCallStarted:
                return Streamed(0, now);
            case ToolCallArgumentsDelta delta:
                return Streamed(delta.Delta.Length, now);
            case ToolCallCompleted completed:
                return Activity(RunActivityKinds.ToolCall, now) with { Tool = completed.Name, Duration = TimeSpan.FromMilliseconds(completed.DurationMs) };
            case ToolCallFailed failed:
                return Activity(RunActivityKinds.ToolCall, now) with
                {
                    Tool = failed.Name,
                    Duration = TimeSpan.FromMilliseconds(failed.DurationMs),
                    Error = new(ToolFailedCode, failed.Error.Length > MaxErrorLength ? failed.Error[..MaxErrorLength] + "…" : failed.Error),
                };
            case MessageCompleted completed:
                // The model's count replaces the estimate; without one, the rest of the estimate.
                var tokens = completed.Usage is { } usage
                    ? usage.CompletionTokens - _reportedForMessage
                    : (_pendingCharacters + CharactersPerToken - 1) / CharactersPerToken;
                _pendingCharacters = 0;
                _reportedForMessage = 0;
                _lastReport = now;
                return tokens == 0 ? null : Activity(RunActivityKinds.Tokens, now) with { Tokens = tokens };
            default:
                return null;
        }
    }

    /// <summary>The error code of a failed tool call's activity.</summary>
    public const string ToolFailedCode = "tool_failed";

    private RunActivity? Streamed(int characters, DateTimeOffset now)
    {
        _pendingCharacters += characters;
        if (!_firstToken)
        {
            _firstToken = true;
            _lastReport = now;
            return Activity(RunActivityKinds.FirstToken, now) with { Duration = now - _startedAt };
        }

        if (now - _lastReport < ReportEvery || _pendingCharacters < CharactersPerToken)
        {
            return null;
        }

        var tokens = _pendingCharacters / CharactersPerToken;
        _pendingCharacters -= tokens * CharactersPerToken;
        _reportedForMessage += tokens;
        _lastReport = now;
        return Activity(RunActivityKinds.Tokens, now) with { Tokens = tokens };
    }

    private RunActivity Activity(string kind, DateTimeOffset now) =>
        started with { Kind = kind, At = now, Usage = null, Error = null, Duration = null };
}
