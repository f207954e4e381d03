using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Agents;

namespace Conversations.Tests.Tools;

/// <summary>Trimming the history a model call is sent to a token budget (<see cref="HistoryBudget"/>).</summary>
public sealed class HistoryBudgetTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void No_budget_sends_the_history_whole()
    {
        var history = RandomHistory(new Random(7), 30);

        Assert.Same(history, HistoryBudget.Trim("Be brief.", history, null));
    }

    [Fact]
    public void A_budget_the_history_fits_changes_nothing()
    {
        var history = RandomHistory(new Random(8), 30);
        var total = TokenEstimate.Of("Be brief.", history);

        Assert.Equal(history, HistoryBudget.Trim("Be brief.", history, total));
        Assert.NotEqual(history.Count, HistoryBudget.Trim("Be brief.", history, total - 1).Count);
    }

    [Fact]
    public void Oldest_turns_go_first_and_a_tool_call_leaves_with_its_results()
    {
        var m = new Messages();
        List<ThreadMessage> history =
        [
            m.User(new string('u', 400)),
            m.Assistant(new string('a', 400)),
            m.User("weather in Paris and Rome?"),
            m.Calls(("call_1", "get_weather"), ("call_2", "get_weather")),
            m.Result("call_1", new string('r', 800)),
            m.Result("call_2", "18 C"),
            m.Assistant("Paris is sunny, Rome is 18 C."),
            m.User("and tomorrow?"),
        ];

        // Room for the last user message and the answer before it, not for the tool exchange (the results are long).
        var budget = TokenEstimate.Of(history[^1]) + TokenEstimate.Of(history[^2]) + TokenEstimate.Of(history[5]) + 10;
        var trimmed = HistoryBudget.Trim(null, history, budget);

        Assert.Equal([history[6], history[7]], trimmed);
    }

    [Fact]
    public void The_latest_user_message_and_system_messages_stay_even_over_the_budget()
    {
        var m = new Messages();
        List<ThreadMessage> history =
        [
            m.System("The customer is on the premium plan."),
            m.User("hi"),
            m.Assistant("hello"),
            m.User(new string('q', 2000)),
        ];

        var trimmed = HistoryBudget.Trim("Be brief.", history, 10);

        Assert.Equal([history[0], history[3]], trimmed);
    }

    [Fact]
    public void Trimming_random_histories_never_splits_a_tool_call_from_its_results_and_respects_the_budget()
    {
        var random = new Random(20260101);
        var trimmedSome = 0;
        for (var iteration = 0; iteration < 3000; iteration++)
        {
            var raw = RandomHistory(random, random.Next(0, 40));
            var history = HistoryForModel.Prepare(raw);
            var instructions = random.Next(4) == 0 ? null : new string('i', random.Next(0, 300));
            var total = TokenEstimate.Of(instructions, history);
            var budget = random.Next(0, Math.Max(1, total + total / 5));

            var trimmed = HistoryBudget.Trim(instructions, history, budget);
            var because = $"iteration {iteration}, budget {budget} of {total}";
            trimmedSome += trimmed.Count < history.Count ? 1 : 0;

            AssertSubsequence(history, trimmed, because);
            AssertToolPairsWhole(trimmed, because);

            var lastUser = history.LastOrDefault(x => x.Role == MessageRoles.User);
            Assert.True(lastUser is null || trimmed.Contains(lastUser), $"the latest user message was dropped ({because})");
            Assert.All(history.Where(x => x.Role == MessageRoles.System), s => Assert.Contains(s, trimmed));

            var pinned = TokenEstimate.Of(instructions, history.Where(x => x.Role == MessageRoles.System || ReferenceEquals(x, lastUser)));
            if (pinned <= budget)
            {
                Assert.True(TokenEstimate.Of(instructions, trimmed) <= budget, $"over the budget ({because})");
            }

            // What goes is the oldest: after the first message kept beyond the pinned ones, nothing is left out.
            var firstKept = history.Select((x, i) => (x, i)).FirstOrDefault(p => trimmed.Contains(p.x) && p.x.Role != MessageRoles.System && !ReferenceEquals(p.x, lastUser));
            if (firstKept.x is not null)
            {
                Assert.All(history.Skip(firstKept.i), x => Assert.Contains(x, trimmed));
            }
        }

        Assert.True(trimmedSome > 1000, $"only {trimmedSome} histories were trimmed: the generator does not exercise trimming");
    }

    private static void AssertSubsequence(IReadOnlyList<ThreadMessage> history, IReadOnlyList<ThreadMessage> trimmed, string because)
    {
        var i = 0;
        foreach (var message in trimmed)
        {
            while (i < history.Count && !ReferenceEquals(history[i], message))
            {
                i++;
            }

            Assert.True(i < history.Count, $"a message is not from the history, or out of order ({because})");
            i++;
        }
    }

    private static void AssertToolPairsWhole(IReadOnlyList<ThreadMessage> trimmed, string because)
    {
        for (var i = 0; i < trimmed.Count; i++)
        {
            var message = trimmed[i];
            if (message.Role == MessageRoles.Tool)
            {
                // A result follows its call's assistant message, with only other results between them.
                var j = i - 1;
                while (j >= 0 && trimmed[j].Role == MessageRoles.Tool)
                {
                    j--;
                }

                Assert.True(
                    j >= 0 && trimmed[j].ToolCalls?.Any(c => c.Id == message.ToolCallId) == true,
                    $"tool result {message.ToolCallId} is sent without its call ({because})");
            }
            else if (message.ToolCalls is { Count: > 0 } calls)
            {
                var results = trimmed.Skip(i + 1).TakeWhile(x => x.Role == MessageRoles.Tool).Select(x => x.ToolCallId).ToHashSet();
                Assert.True(calls.All(c => results.Contains(c.Id)), $"a call of {message.Id} is sent without its result ({because})");
            }
        }
    }

    /// <summary>
    /// A history as threads have them: an optional system message, then user turns answered with text or with tool
    /// calls and their results (some results missing, as after a crash; now and then a stray result), long and short
    /// texts; ending anywhere a model call can happen.
    /// </summary>
    internal static List<ThreadMessage> RandomHistory(Random random, int length)
    {
        var m = new Messages();
        var history = new List<ThreadMessage>();
        if (random.Next(3) == 0)
        {
            history.Add(m.System(Text(random)));
        }

        while (history.Count < length)
        {
            history.Add(m.User(Text(random)));
            var rounds = random.Next(0, 4);
            for (var round = 0; round < rounds && history.Count < length; round++)
            {
                if (random.Next(2) == 0)
                {
                    history.Add(m.Assistant(Text(random)));
                    continue;
                }

                var calls = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (m.NextCallId(), "tool_" + random.Next(3))).ToArray();
                history.Add(m.Calls(calls));
                foreach (var (id, _) in calls)
                {
                    if (random.Next(8) != 0)
                    {
                        history.Add(m.Result(id, Text(random)));
                    }
                }

                if (random.Next(20) == 0)
                {
                    history.Add(m.Result("call_stray_" + random.Next(1000), Text(random)));
                }
            }

            if (random.Next(6) == 0)
            {
                history.Add(m.System(Text(random)));
            }
        }

        return history;
    }

    private static string Text(Random random) => new('x', random.Next(4) == 0 ? random.Next(200, 2000) : random.Next(0, 120));

    /// <summary>Builds messages with increasing ordinals and unique ids.</summary>
    internal sealed class Messages
    {
        private int _ordinal;
        private int _call;

        public string NextCallId() => "call_" + ++_call;

        public ThreadMessage System(string text) => Message(MessageRoles.System, text);

        public ThreadMessage User(string text) => Message(MessageRoles.User, text);

        public ThreadMessage Assistant(string text) => Message(MessageRoles.Assistant, text);

        public ThreadMessage Calls(params (string Id, string Name)[] calls) =>
            Message(MessageRoles.Assistant, "") with { ToolCalls = [.. calls.Select(c => new ToolCallInfo(c.Id, c.Name, """{"q":"x"}"""))] };

        public ThreadMessage Result(string callId, string text) =>
            Message(MessageRoles.Tool, text) with { ToolCallId = callId, Name = "tool" };

        private ThreadMessage Message(string role, string text)
        {
            _ordinal++;
            return new ThreadMessage($"msg_{_ordinal}", _ordinal, role, text, Start.AddSeconds(_ordinal));
        }
    }
}
