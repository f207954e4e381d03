using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Agents;
using Conversations.Grains.Models;

namespace Conversations.Tests.Fakes;

/// <summary>A chat model that answers every turn with one text and keeps each request it was sent.</summary>
public sealed class RecordingChatModel(string answer = "ok") : IChatModel
{
    private readonly ConcurrentQueue<ModelRequest> _requests = new();

    public string Name => "recording";

    public bool SupportsStreaming => true;

    public IReadOnlyList<ModelRequest> Requests => [.. _requests];

    public async IAsyncEnumerable<ModelUpdate> StreamAsync(ModelRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        _requests.Enqueue(request);
        await Task.Yield();
        yield return new ModelTextDelta(answer);
        yield return new ModelFinished("stop", new Usage(1, 1, 2));
    }
}

/// <summary>A run sink that keeps what a run publishes and stores; no steering.</summary>
public sealed class CollectingRunSink : IRunSink
{
    private readonly ConcurrentQueue<ThreadEvent> _events = new();
    private readonly ConcurrentQueue<ThreadMessage> _messages = new();

    public IReadOnlyList<ThreadEvent> Events => [.. _events];

    public IReadOnlyList<ThreadMessage> Messages => [.. _messages];

    public string CancelledMessageStatus => MessageStatuses.Cancelled;

    public ValueTask PublishAsync(ThreadEvent threadEvent, CancellationToken cancellationToken)
    {
        _events.Enqueue(threadEvent);
        return ValueTask.CompletedTask;
    }

    public Task AppendMessagesAsync(IReadOnlyList<ThreadMessage> messages, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            _messages.Enqueue(message);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ThreadMessage>> JoinSteeredAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ThreadMessage>>([]);
}
