using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Tools;

namespace Conversations.Grains.Agents;

/// <summary>
/// Makes a stored history safe to send to a model: every tool call an assistant message asked for gets a tool
/// result (a call cut off by a cancel or a lost node is answered with an error), and tool results whose call is
/// not in the history are dropped. OpenAI-compatible endpoints reject either mismatch.
/// </summary>
public static class HistoryForModel
{
    public static IReadOnlyList<ThreadMessage> Prepare(IReadOnlyList<ThreadMessage> history)
    {
        var answered = history.Where(m => m.Role == MessageRoles.Tool && m.ToolCallId is not null).Select(m => m.ToolCallId!).ToHashSet(StringComparer.Ordinal);
        var asked = new HashSet<string>(StringComparer.Ordinal);
        var prepared = new List<ThreadMessage>(history.Count);
        for (var i = 0; i < history.Count; i++)
        {
            var message = history[i];
            if (message.Role == MessageRoles.Tool && (message.ToolCallId is null || !asked.Contains(message.ToolCallId)))
            {
                continue;
            }

            prepared.Add(message);
            if (message.Role != MessageRoles.Assistant || message.ToolCalls is not { Count: > 0 } calls)
            {
                continue;
            }

            foreach (var call in calls)
            {
                asked.Add(call.Id);
            }

            // Results follow their assistant message; synthesise the missing ones right after the existing ones.
            var j = i + 1;
            while (j < history.Count && history[j].Role == MessageRoles.Tool)
            {
                j++;
            }

            for (var k = i + 1; k < j; k++)
            {
                if (history[k].ToolCallId is { } id && asked.Contains(id))
                {
                    prepared.Add(history[k]);
                }
            }

            foreach (var call in calls.Where(c => !answered.Contains(c.Id)))
            {
                prepared.Add(new ThreadMessage("synthetic_" + call.Id, message.Ordinal, MessageRoles.Tool, ToolResults.FormatError("the tool call did not complete."), message.CreatedAt)
                {
                    ToolCallId = call.Id,
                    Name = call.Name,
                    RunId = message.RunId,
                });
            }

            i = j - 1;
        }

        return prepared;
    }
}
