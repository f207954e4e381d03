using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Gateway.Telemetry;

/// <summary>The logs of a run: structured, scoped by thread, run and silo; no secret and no message content at Information.</summary>
public sealed class LoggingTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_runs_log_lines_carry_its_thread_run_and_silo_and_never_the_conversation_or_the_key()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        var asked = $"my-private-question-{Guid.NewGuid():N}";
        var answered = $"the-private-answer-{Guid.NewGuid():N}";
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", """{"expression":"6*7"}""")),
            ScriptedResponse.Text("So: ", answered),
            ScriptedResponse.Error(500, "The model broke."));
        var logs = new CapturedLogs();
        // Embedded: one host, so one logger factory's scopes (a cluster silo in this process would log through another).
        await using var app = GatewayApp.Embedded(
            MetricsTests.ModelSettings(model, $"logs-{Guid.NewGuid():N}"),
            services => services.AddSingleton<ILoggerProvider>(logs));
        var client = app.Client;
        var threadId = await client.CreateThreadAsync(cancellationToken: Guard);

        using var response = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = asked, stream = true }, Guard);
        var events = await response.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard);
        Assert.Equal("run.completed", events[^1].Type);
        var runId = events[^1].Str("runId");
        using var failing = await client.PostStreamAsync($"/threads/{threadId}/messages", new { content = asked, stream = true }, Guard);
        var failed = (await failing.ReadEventsAsync(Guard).ReadUntilAsync(SseEvents.IsRunEnd, Guard))[^1];
        Assert.Equal("run.failed", failed.Type);

        // What the run logs in its course (its end, the model's failure) is in the run's scope.
        var completed = Assert.Single(logs.Lines, l => l.Category.EndsWith("ThreadGrain", StringComparison.Ordinal) && l.EventId.Id == 1001 && l.Message.Contains(runId!, StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, completed.Level);
        Assert.Equal(threadId, completed.Scopes["ThreadId"]);
        Assert.Equal(runId, completed.Scopes["RunId"]);
        Assert.False(string.IsNullOrEmpty(completed.Scopes["SiloId"] as string));
        var modelFailure = Assert.Single(logs.Lines, l => l.Category.EndsWith("OpenAiChatModel", StringComparison.Ordinal));
        Assert.Equal(failed.Str("runId"), modelFailure.Scopes["RunId"]);
        Assert.Equal(threadId, modelFailure.Scopes["ThreadId"]);

        // Neither what the user said nor what the model answered is logged at Information or above; the key never is.
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Information && (l.Message.Contains(asked, StringComparison.Ordinal) || l.Message.Contains(answered, StringComparison.Ordinal)));
        Assert.DoesNotContain(logs.Lines, l => l.Level >= LogLevel.Information && l.Scopes.Values.Any(v => v?.ToString()?.Contains(asked, StringComparison.Ordinal) == true));
        Assert.DoesNotContain(logs.Lines, l => (l.Message + l.Exception).Contains("sk-test-SECRET", StringComparison.Ordinal));
    }
}
