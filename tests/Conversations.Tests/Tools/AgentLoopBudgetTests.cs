using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Agents;
using Conversations.Grains.Tools;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Tools;

/// <summary>The agent loop sends the model a history trimmed to its budget, and stores nothing less.</summary>
public sealed class AgentLoopBudgetTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private static List<ThreadMessage> LongHistory()
    {
        var m = new HistoryBudgetTests.Messages();
        var history = new List<ThreadMessage>();
        for (var turn = 0; turn < 20; turn++)
        {
            history.Add(m.User($"question {turn} " + new string('q', 200)));
            history.Add(m.Assistant($"answer {turn} " + new string('a', 200)));
        }

        history.Add(m.User("the last question"));
        return history;
    }

    [Fact]
    public async Task A_budget_trims_what_the_model_is_sent_to_the_newest_turns()
    {
        var model = new RecordingChatModel();
        var agent = new AgentDefinition("budgeted");
        var history = LongHistory();
        var loop = new AgentLoop(model, new ToolRegistry([]), TimeProvider.System) { HistoryBudgetTokens = 300 };

        await loop.RunAsync("thread_b", "run_b", agent, history, new CollectingRunSink(), Guard);

        var sent = Assert.Single(model.Requests).Messages;
        Assert.True(sent.Count < history.Count);
        Assert.Equal("the last question", sent[^1].Content);
        Assert.True(TokenEstimate.Of(agent.Instructions, sent) <= 300);
        Assert.Equal(history.Skip(history.Count - sent.Count), sent);
    }

    [Fact]
    public async Task Without_a_budget_the_whole_history_is_sent()
    {
        var model = new RecordingChatModel();
        var history = LongHistory();

        await new AgentLoop(model, new ToolRegistry([]), TimeProvider.System)
            .RunAsync("thread_b", "run_b", new AgentDefinition("whole"), history, new CollectingRunSink(), Guard);

        Assert.Equal(history, Assert.Single(model.Requests).Messages);
    }
}
