using Conversations.Gateway.Auth;
using Conversations.Gateway.Streaming;
using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Gateway.Threads;

/// <summary>
/// What every wire format does to run a turn: make sure the thread exists, send the user message to its grain,
/// and read that run's events from the thread stream. Dialects only project those events; none calls a model.
/// </summary>
public sealed class ThreadRunner(IGrainFactory grains, IThreadEventSource events)
{
    /// <summary>
    /// Starts a run on <paramref name="threadId"/>, creating the thread when it does not exist (with
    /// <paramref name="priorMessages"/> as its history; ignored for an existing thread, which has its own).
    /// A null <paramref name="threadId"/> makes a new thread. A new thread belongs to <paramref name="caller"/>; an
    /// existing one that belongs to someone else is <see cref="RunStart.ThreadNotFound"/>, and nothing is sent to it.
    /// </summary>
    public async Task<RunStart> StartAsync(
        Caller caller, string? threadId, IReadOnlyList<NewMessage> priorMessages, SendMessage message, CancellationToken cancellationToken)
    {
        threadId ??= Ids.NewThreadId();
        var grain = grains.GetGrain<IThreadGrain>(threadId);
        // Create answers null for a thread that exists already: one call either way.
        var created = await grain.CreateAsync(new CreateThread { Messages = priorMessages, Owner = caller.Owner }, cancellationToken) is not null;
        if (!created && !caller.IsAdmin && (await grain.GetAsync(cancellationToken) is not { } existing || !caller.MayAccess(existing)))
        {
            // An owner never changes: checked once, before the send.
            return new RunStart.ThreadNotFound(threadId);
        }

        var result = await grain.SendMessageAsync(message, cancellationToken);
        return result switch
        {
            SendMessageResult.Accepted accepted => new RunStart.Started(
                threadId,
                accepted.RunId,
                created,
                // The run's events, from the first: subscribed after the run started, replayed from its start sequence.
                events.SubscribeAsync(threadId, accepted.StartSequence - 1, CancellationToken.None).UntilRunEndsAsync(accepted.RunId, CancellationToken.None)),
            SendMessageResult.Rejected rejected => new RunStart.Rejected(threadId, rejected.ActiveRunId),
            SendMessageResult.AgentNotFound agent => new RunStart.AgentNotFound(agent.Agent),
            SendMessageResult.LimitExceeded exceeded => new RunStart.LimitExceeded(threadId, exceeded.Limit),
            _ => new RunStart.ThreadNotFound(threadId),
        };
    }

    /// <summary>Reads a thread's whole history (for dialects that answer with it).</summary>
    public async Task<IReadOnlyList<ThreadMessage>?> ReadHistoryAsync(string threadId, CancellationToken cancellationToken)
    {
        var grain = grains.GetGrain<IThreadGrain>(threadId);
        var all = new List<ThreadMessage>();
        string? after = null;
        while (true)
        {
            var page = await grain.GetMessagesAsync(new MessagePageRequest(after, 1000), cancellationToken);
            if (page is null)
            {
                return null;
            }

            all.AddRange(page.Data);
            if (!page.HasMore)
            {
                return all;
            }

            after = page.LastId;
        }
    }
}

/// <summary>The outcome of <see cref="ThreadRunner.StartAsync"/>.</summary>
public abstract record RunStart
{
    private RunStart() { }

    /// <summary>The run started; <paramref name="Events"/> are its events, ending with its terminal one.</summary>
    public sealed record Started(string ThreadId, string RunId, bool ThreadCreated, IAsyncEnumerable<ThreadEvent> Events) : RunStart;

    public sealed record Rejected(string ThreadId, string ActiveRunId) : RunStart;

    public sealed record AgentNotFound(string Agent) : RunStart;

    /// <summary>The message would take the thread over a storage limit; nothing was stored.</summary>
    public sealed record LimitExceeded(string ThreadId, ThreadLimit Limit) : RunStart;

    public sealed record ThreadNotFound(string ThreadId) : RunStart;
}
