using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Grains.Agents;

/// <summary>
/// Fits the history a model call is sent into a token budget: the oldest turns go first. What is always sent: the
/// system instructions (counted against the budget), every system message of the thread, and the latest user
/// message. An assistant message that called tools and the results of those calls go or stay together, never one
/// without the other (OpenAI-compatible endpoints reject either half alone). Beyond that it keeps the newest
/// messages that fit, in order, stopping at the first (older) one that does not, so what is sent is a contiguous
/// recent stretch of the conversation. When what is always sent is over the budget by itself, that is what is sent.
/// Only what one model call is sent is trimmed: the stored history stays whole.
/// </summary>
public static class HistoryBudget
{
    /// <summary>
    /// <paramref name="history"/> (as <see cref="HistoryForModel.Prepare"/> makes it: each tool result right after the
    /// assistant message that asked for it) trimmed to <paramref name="budgetTokens"/>, estimated with
    /// <see cref="TokenEstimate"/>; null sends it whole.
    /// </summary>
    public static IReadOnlyList<ThreadMessage> Trim(string? instructions, IReadOnlyList<ThreadMessage> history, int? budgetTokens)
    {
        if (budgetTokens is not { } budget || history.Count == 0)
        {
            return history;
        }

        var units = Units(history);
        var remaining = (long)budget - TokenEstimate.Of(instructions) - units.Sum(u => (long)u.Tokens);
        if (remaining >= 0)
        {
            return history;
        }

        var lastUser = units.FindLastIndex(u => history[u.Start].Role == MessageRoles.User);
        var keep = new bool[units.Count];
        remaining = (long)budget - TokenEstimate.Of(instructions);
        for (var u = 0; u < units.Count; u++)
        {
            if (u == lastUser || history[units[u].Start].Role == MessageRoles.System)
            {
                keep[u] = true;
                remaining -= units[u].Tokens;
            }
        }

        for (var u = units.Count - 1; u >= 0; u--)
        {
            if (keep[u])
            {
                continue;
            }

            if (units[u].Tokens > remaining)
            {
                break;
            }

            keep[u] = true;
            remaining -= units[u].Tokens;
        }

        var trimmed = new List<ThreadMessage>();
        for (var u = 0; u < units.Count; u++)
        {
            if (keep[u])
            {
                for (var i = units[u].Start; i < units[u].End; i++)
                {
                    trimmed.Add(history[i]);
                }
            }
        }

        return trimmed;
    }

    /// <summary>The history cut into what goes or stays whole: one message, or an assistant message with its tool results.</summary>
    private static List<Unit> Units(IReadOnlyList<ThreadMessage> history)
    {
        var units = new List<Unit>();
        for (var i = 0; i < history.Count;)
        {
            var start = i;
            var tokens = TokenEstimate.Of(history[i]);
            var calledTools = history[i].Role == MessageRoles.Assistant && history[i].ToolCalls is { Count: > 0 };
            i++;
            while (calledTools && i < history.Count && history[i].Role == MessageRoles.Tool)
            {
                tokens += TokenEstimate.Of(history[i]);
                i++;
            }

            units.Add(new Unit(start, i, tokens));
        }

        return units;
    }

    /// <summary>Messages <c>[Start, End)</c> of the history, <see cref="Tokens"/> estimated in all.</summary>
    private readonly record struct Unit(int Start, int End, int Tokens);
}

/// <summary>
/// Estimates how many tokens a message takes: a quarter of its characters (text, a tool message's name, each tool
/// call's name and arguments), rounded up, plus 4 for the message's framing and 4 per tool call. About what
/// OpenAI's tokenizers give for English text and JSON, and what most model families come close to; it counts no
/// tokenizer's vocabulary, so it needs no data files and favours no model.
/// </summary>
public static class TokenEstimate
{
    public const int PerMessage = 4;
    public const int PerToolCall = 4;

    public static int Of(string? text) => text is null ? 0 : (text.Length + 3) / 4;

    public static int Of(ThreadMessage message)
    {
        var tokens = PerMessage + Of(message.Content) + Of(message.Name);
        foreach (var call in message.ToolCalls ?? [])
        {
            tokens += PerToolCall + Of(call.Name) + Of(call.Arguments);
        }

        return tokens;
    }

    /// <summary>What a model call's history and instructions are estimated at.</summary>
    public static int Of(string? instructions, IEnumerable<ThreadMessage> messages) => Of(instructions) + messages.Sum(Of);
}
