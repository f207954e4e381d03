using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Monitoring;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Monitoring;

namespace Conversations.Tests.Grains;

/// <summary>What a run's events tell the run monitor: the time to first output, tokens as they stream, tool calls.</summary>
public sealed class RunMeterTests
{
    private static readonly RunActivity Started = new(RunActivityKinds.Started, "t1", "r1", "default", "m", "silo", DateTimeOffset.UnixEpoch);

    private DateTimeOffset _now = DateTimeOffset.UnixEpoch;

    [Fact]
    public void The_first_output_reports_the_time_to_it_once()
    {
        var meter = new RunMeter(Started, () => _now);
        _now += TimeSpan.FromMilliseconds(350);
        var first = meter.Observe(Delta("Hel"));
        Assert.Equal(RunActivityKinds.FirstToken, first?.Kind);
        Assert.Equal(TimeSpan.FromMilliseconds(350), first?.Duration);
        Assert.Equal("r1", first?.RunId);
        Assert.Null(meter.Observe(Delta("lo")));
        _now += TimeSpan.FromSeconds(5);
        Assert.NotEqual(RunActivityKinds.FirstToken, meter.Observe(Delta("more text"))?.Kind);
    }

    [Fact]
    public void Streamed_token_estimates_are_corrected_to_the_models_count()
    {
        var meter = new RunMeter(Started, () => _now);
        var reported = new List<RunActivity>();
        void Observe(ThreadEvent e)
        {
            if (meter.Observe(e) is { } activity)
            {
                reported.Add(activity);
            }
        }

        Observe(Delta("a"));
        for (var i = 0; i < 5; i++)
        {
            _now += TimeSpan.FromSeconds(1.1);
            Observe(Delta(new string('x', 40)));
        }

        // About once a second while streaming: 40 characters a second, about 10 tokens each time.
        var streamed = reported.Where(r => r.Kind == RunActivityKinds.Tokens).ToList();
        Assert.Equal(5, streamed.Count);
        Assert.All(streamed, r => Assert.Equal(10, r.Tokens));

        Observe(new MessageCompleted { ThreadId = "t1", RunId = "r1", MessageId = "m1", Content = "…", FinishReason = "stop", Usage = new Usage(10, 42, 52) });
        Assert.Equal(42, reported.Where(r => r.Kind == RunActivityKinds.Tokens).Sum(r => r.Tokens));
        Assert.Equal(-8, reported[^1].Tokens);
    }

    [Fact]
    public void Tool_calls_are_reported_with_their_duration_and_failures_with_the_error()
    {
        var meter = new RunMeter(Started, () => _now);
        var completed = meter.Observe(new ToolCallCompleted { ThreadId = "t1", RunId = "r1", CallId = "c1", Name = "calculate", Arguments = "{}", Result = "4", DurationMs = 12 });
        Assert.Equal(RunActivityKinds.ToolCall, completed?.Kind);
        Assert.Equal("calculate", completed?.Tool);
        Assert.Equal(TimeSpan.FromMilliseconds(12), completed?.Duration);
        Assert.Null(completed?.Error);

        var failed = meter.Observe(new ToolCallFailed { ThreadId = "t1", RunId = "r1", CallId = "c2", Name = "slow", Arguments = "{}", Error = "timed out after 30 s", DurationMs = 30000 });
        Assert.Equal(new RunError(RunMeter.ToolFailedCode, "timed out after 30 s"), failed?.Error);
        Assert.Equal("slow", failed?.Tool);
    }

    private static TextDelta Delta(string text) => new() { ThreadId = "t1", RunId = "r1", MessageId = "m1", Text = text };
}
