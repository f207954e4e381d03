using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Agents;
using Conversations.Grains.Models;
using Conversations.Grains.Tools;
using Microsoft.Extensions.Logging;

namespace Conversations.Grains.Threads;

/// <summary>
/// The thread grain: the only writer of a thread's history. Calls arrive one at a time (the runtime's mailbox);
/// a run executes in the background on the same turn-based scheduler, so grain fields are never touched by two
/// pieces of code at once, and calls such as cancel are served while a run streams.
/// </summary>
public sealed class ThreadGrain(
    GrainContext context,
    IThreadStore store,
    IThreadStreamProvider streams,
    IAgentCatalog agents,
    IChatModelProvider models,
    ToolRegistry tools,
    TimeProvider time,
    ILogger<ThreadGrain> logger) : IThreadGrain, IGrainLifecycle
{
    private VersionedThreadState? _state;
    private IThreadStream? _stream;
    private ActiveRun? _activeRun;

    private string ThreadId => context.Key;

    private DateTimeOffset Now() => time.GetUtcNow();

    private IThreadStream Stream => _stream ?? throw new InvalidOperationException("The grain is not active.");

    /// <inheritdoc />
    public bool IsBusy => _activeRun is not null;

    /// <inheritdoc />
    public async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _state = await store.ReadAsync(ThreadId, cancellationToken);
        _stream = await streams.GetStreamAsync(ThreadId, cancellationToken);
        if (_state?.State.ActiveRunId is { } lostRunId)
        {
            // The state says a run is active, but no activation was running it: the node that ran it stopped.
            await EndLostRunAsync(lostRunId, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_activeRun is { } run)
        {
            run.Interrupt(new RunError(
                RunErrorCodes.Interrupted,
                reason == DeactivationReason.OwnershipLost
                    ? "The run was interrupted: the node running it lost the thread to another node."
                    : "The server shut down while the run was in progress."));
            try
            {
                await run.Completion.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Log.RunNotEndedOnDeactivation(logger, ThreadId, run.RunId);
            }
        }

        if (_stream is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        _stream = null;
    }

    /// <inheritdoc />
    public async Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default)
    {
        if (_state is not null)
        {
            return null;
        }

        var now = time.GetUtcNow();
        var messages = (command.Messages ?? [])
            .Select((m, i) => new ThreadMessage(Ids.NewMessageId(), i + 1, m.Role, m.Content, now))
            .ToList();
        var state = new ThreadGrainState(ThreadId, now, now)
        {
            Metadata = command.Metadata ?? new Dictionary<string, string>(),
            MessageCount = messages.Count,
        };
        try
        {
            await WriteAsync(state, messages, [], cancellationToken);
        }
        catch (StorageConflictException)
        {
            // Created concurrently elsewhere (another node, before this activation read): it exists.
            _state = await store.ReadAsync(ThreadId, cancellationToken);
            return null;
        }

        return ThreadSnapshot.From(state);
    }

    /// <inheritdoc />
    public Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_state is null ? null : ThreadSnapshot.From(_state.State));

    /// <inheritdoc />
    public async Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default)
    {
        if (_state is null)
        {
            return null;
        }

        var afterOrdinal = 0;
        if (request.After is not null)
        {
            var ordinal = await store.FindMessageOrdinalAsync(ThreadId, request.After, cancellationToken);
            if (ordinal is null)
            {
                return new MessagePage([], false);
            }

            afterOrdinal = ordinal.Value;
        }

        var limit = Math.Clamp(request.Limit, 1, 1000);
        var page = await store.ReadMessagesAsync(ThreadId, afterOrdinal, limit + 1, cancellationToken);
        return new MessagePage(page.Take(limit).ToList(), page.Count > limit);
    }

    /// <inheritdoc />
    public async Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        _state is null ? null : _activeRun?.RunId == runId ? _activeRun.Record : await store.ReadRunAsync(ThreadId, runId, cancellationToken);

    /// <inheritdoc />
    public async Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
    {
        if (_state is null)
        {
            return new AppendMessagesResult.ThreadNotFound();
        }

        if (_activeRun is { } active)
        {
            return new AppendMessagesResult.Rejected(active.RunId);
        }

        var now = time.GetUtcNow();
        var state = _state.State;
        var stored = messages
            .Select((m, i) => new ThreadMessage(Ids.NewMessageId(), state.MessageCount + i + 1, m.Role, m.Content, now))
            .ToList();
        if (stored.Count > 0)
        {
            await WriteAsync(state with { MessageCount = state.MessageCount + stored.Count, UpdatedAt = now }, stored, [], cancellationToken);
        }

        return new AppendMessagesResult.Appended(stored);
    }

    /// <inheritdoc />
    public async Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default)
    {
        if (_state is null)
        {
            return new SendMessageResult.ThreadNotFound();
        }

        var agentName = command.Agent ?? AgentDefinition.DefaultName;
        var agent = await agents.GetAsync(agentName, cancellationToken);
        if (agent is null)
        {
            return new SendMessageResult.AgentNotFound(agentName);
        }

        if (command.RunId is { } requestedRunId)
        {
            // Delivered again (a queue entry whose first delivery already started the run): answer as before.
            var existing = _activeRun?.RunId == requestedRunId ? _activeRun.Record : await store.ReadRunAsync(ThreadId, requestedRunId, cancellationToken);
            if (existing is not null)
            {
                return new SendMessageResult.Accepted(existing.Id, existing.UserMessageId, existing.StartSequence);
            }
        }

        if (_activeRun is { } active)
        {
            return new SendMessageResult.Rejected(active.RunId);
        }

        agent = agent with
        {
            Model = command.Model ?? agent.Model,
            Temperature = command.Temperature ?? agent.Temperature,
            MaxTokens = command.MaxTokens ?? agent.MaxTokens,
            MaxParallelTools = command.MaxParallelTools is { } maxParallelTools ? Math.Max(1, maxParallelTools) : agent.MaxParallelTools,
        };
        var model = models.Resolve(agent.Model);
        var now = time.GetUtcNow();
        var runId = command.RunId ?? Ids.NewRunId();
        var state = _state.State;
        var userMessage = new ThreadMessage(Ids.NewMessageId(), state.MessageCount + 1, MessageRoles.User, command.Content, now) { RunId = runId };
        var run = new RunRecord(runId, ThreadId, agent.Name, userMessage.Id, now) { StartSequence = Stream.LastSequence + 1 };

        // Durable first: the user message and the run exist before anyone hears of them.
        await WriteAsync(
            state with { MessageCount = userMessage.Ordinal, ActiveRunId = runId, LastRunId = runId, UpdatedAt = now },
            [userMessage],
            [run],
            cancellationToken);
        var started = await Stream.AppendAsync(
            new RunStarted { ThreadId = ThreadId, RunId = runId, UserMessageId = userMessage.Id, Agent = agent.Name, Model = model.Name },
            CancellationToken.None);

        _activeRun = new ActiveRun(run with { StartSequence = started.Sequence });
        Log.RunStarted(logger, ThreadId, runId, agent.Name, model.Name);
        _activeRun.Completion = ExecuteRunAsync(_activeRun, agent, model);
        return new SendMessageResult.Accepted(runId, userMessage.Id, started.Sequence);
    }

    /// <inheritdoc />
    public async Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        if (_state is null)
        {
            return new CancelRunResult.NotFound();
        }

        if (_activeRun is { } active && active.RunId == runId)
        {
            active.Cancel();
            return new CancelRunResult.Cancelling(active.Record);
        }

        var stored = await store.ReadRunAsync(ThreadId, runId, cancellationToken);
        return stored is null ? new CancelRunResult.NotFound() : new CancelRunResult.AlreadyEnded(stored);
    }

    private async Task ExecuteRunAsync(ActiveRun run, AgentDefinition agent, IChatModel model)
    {
        // The run owns its lifetime: it is stopped by a cancel or a shutdown, never by the caller that started it.
        await Task.Yield();
        var sink = new RunSink(this, run);
        ThreadEvent terminal;
        RunRecord ended;
        try
        {
            var history = await store.ReadMessagesAsync(ThreadId, 0, int.MaxValue, run.Token);
            var result = await new AgentLoop(model, tools, time).RunAsync(ThreadId, run.RunId, agent, history, sink, run.Token);
            ended = run.Record with { Status = RunStatuses.Completed, StopReason = result.StopReason, Usage = result.Usage };
            terminal = new RunCompleted { ThreadId = ThreadId, RunId = run.RunId, StopReason = result.StopReason, Usage = result.Usage };
            Log.RunCompleted(logger, ThreadId, run.RunId, result.StopReason);
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            if (run.InterruptedBy is { } error)
            {
                ended = run.Record with { Status = RunStatuses.Failed, Error = error, Usage = sink.Usage };
                terminal = new RunFailed { ThreadId = ThreadId, RunId = run.RunId, Error = error, Usage = sink.Usage };
                Log.RunFailed(logger, ThreadId, run.RunId, error.Code, error.Message);
            }
            else
            {
                ended = run.Record with { Status = RunStatuses.Cancelled, Usage = sink.Usage };
                terminal = new RunCancelled { ThreadId = ThreadId, RunId = run.RunId, Reason = "cancelled by request", Usage = sink.Usage };
                Log.RunCancelled(logger, ThreadId, run.RunId);
            }
        }
        catch (ModelException ex)
        {
            var error = new RunError(ex.Code, ex.Message);
            ended = run.Record with { Status = RunStatuses.Failed, Error = error, Usage = sink.Usage };
            terminal = new RunFailed { ThreadId = ThreadId, RunId = run.RunId, Error = error, Usage = sink.Usage };
            Log.RunFailed(logger, ThreadId, run.RunId, error.Code, error.Message);
        }
        catch (Exception ex)
        {
            var error = new RunError(RunErrorCodes.Internal, "The run failed because of an internal error.");
            ended = run.Record with { Status = RunStatuses.Failed, Error = error, Usage = sink.Usage };
            terminal = new RunFailed { ThreadId = ThreadId, RunId = run.RunId, Error = error, Usage = sink.Usage };
            Log.RunCrashed(logger, ex, ThreadId, run.RunId);
        }

        ended = ended with { EndedAt = time.GetUtcNow() };
        try
        {
            await WriteAsync(_state!.State with { ActiveRunId = null, UpdatedAt = ended.EndedAt.Value }, [], [ended], CancellationToken.None);
        }
        catch (Exception ex)
        {
            Log.RunEndNotStored(logger, ex, ThreadId, run.RunId);
        }
        finally
        {
            _activeRun = null;
            await Stream.AppendAsync(terminal, CancellationToken.None);
        }
    }

    private async Task EndLostRunAsync(string runId, CancellationToken cancellationToken)
    {
        var error = new RunError(RunErrorCodes.Interrupted, "The run was interrupted: the node running it stopped before it ended.");
        var stored = await store.ReadRunAsync(ThreadId, runId, cancellationToken);
        var now = time.GetUtcNow();
        var ended = (stored ?? new RunRecord(runId, ThreadId, AgentDefinition.DefaultName, string.Empty, now))
            with { Status = RunStatuses.Failed, Error = error, EndedAt = now };
        await WriteAsync(_state!.State with { ActiveRunId = null, UpdatedAt = now }, [], [ended], cancellationToken);
        await Stream.AppendAsync(new RunFailed { ThreadId = ThreadId, RunId = runId, Error = error }, cancellationToken);
        Log.RunFailed(logger, ThreadId, runId, error.Code, error.Message);
    }

    private async Task WriteAsync(
        ThreadGrainState state, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken)
    {
        var version = await store.WriteAsync(
            new ThreadWrite(state, _state?.Version ?? 0) { Messages = messages, Runs = runs },
            cancellationToken);
        _state = new VersionedThreadState(state, version);
    }

    /// <summary>Where the agent loop's events and messages go: the stream, and the grain's state.</summary>
    private sealed class RunSink(ThreadGrain grain, ActiveRun run) : IRunSink
    {
        public Usage? Usage { get; private set; }

        public string CancelledMessageStatus => run.InterruptedBy is null ? MessageStatuses.Cancelled : MessageStatuses.Incomplete;

        public async ValueTask PublishAsync(ThreadEvent threadEvent, CancellationToken cancellationToken)
        {
            if (threadEvent is MessageCompleted completed)
            {
                Usage = Abstractions.Threads.Usage.Add(Usage, completed.Usage);
            }

            await grain.Stream.AppendAsync(threadEvent, cancellationToken);
        }

        public async Task AppendMessagesAsync(IReadOnlyList<ThreadMessage> messages, CancellationToken cancellationToken)
        {
            var state = grain._state!.State;
            var numbered = messages.Select((m, i) => m with { Ordinal = state.MessageCount + i + 1 }).ToList();
            await grain.WriteAsync(
                state with { MessageCount = state.MessageCount + numbered.Count, UpdatedAt = grain.Now() },
                numbered,
                [],
                cancellationToken);
        }
    }

    private sealed class ActiveRun(RunRecord record)
    {
        private readonly CancellationTokenSource _cancellation = new();

        public RunRecord Record { get; } = record;
        public string RunId => Record.Id;
        public CancellationToken Token => _cancellation.Token;
        public RunError? InterruptedBy { get; private set; }
        public Task Completion { get; set; } = Task.CompletedTask;

        public void Cancel() => _cancellation.Cancel();

        public void Interrupt(RunError reason)
        {
            InterruptedBy ??= reason;
            _cancellation.Cancel();
        }
    }
}
