using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Threads;
using OpenAI.Chat;

namespace Conversations.Grains.Models.OpenAi;

/// <summary>The non-streaming call, for models marked non-streaming.</summary>
public sealed partial class OpenAiChatModel
{
    /// <summary>
    /// One model turn as a whole answer (the SDK's <c>CompleteChatAsync</c>, <c>stream: false</c>), reported as the
    /// updates a stream would end with: the text as one delta, each tool call as one piece, then the finish. The agent
    /// loop and the events it publishes are the same as for a streamed turn.
    /// </summary>
    private async IAsyncEnumerable<ModelUpdate> CompleteAsync(
        ModelRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var messages = ToChatMessages(request);
        var options = ToCompletionOptions(request);
        var updates = new List<ModelUpdate>();
        try
        {
            ChatCompletion completion = await _client.CompleteChatAsync(messages, options, cancellationToken).ConfigureAwait(false);
            var text = string.Concat(completion.Content.Where(part => part.Kind == ChatMessageContentPartKind.Text).Select(part => part.Text));
            if (text.Length > 0)
            {
                updates.Add(new ModelTextDelta(text));
            }

            for (var index = 0; index < completion.ToolCalls.Count; index++)
            {
                var call = completion.ToolCalls[index];
                var arguments = call.FunctionArguments is { IsEmpty: false } data ? data.ToString() : null;
                updates.Add(new ModelToolCallDelta(index, call.Id, call.FunctionName, arguments));
            }

            var usage = completion.Usage is { } tokens ? new Usage(tokens.InputTokenCount, tokens.OutputTokenCount, tokens.TotalTokenCount) : null;
            updates.Add(new ModelFinished(ToFinishReason(completion.FinishReason), usage));
        }
        catch (Exception exception) when (exception is not ModelException)
        {
            throw Translate(exception, responseStarted: false, request, cancellationToken);
        }

        foreach (var update in updates)
        {
            yield return update;
        }
    }
}
