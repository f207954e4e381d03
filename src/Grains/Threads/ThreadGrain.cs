using Conversations.Grains.Abstractions;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Monitoring;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Agents;
using Conversations.Grains.Models;
using Conversations.Grains.Telemetry;
using Conversations.Grains.Tools;
using Conversations.Grains.Webhooks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace Conversations.Grains.Threads;

/// <summary>
/// The thread grain: the only writer of a thread's history. Orleans delivers calls one at a time; a run executes in
/// the background on the activation's scheduler, so grain fields are never touched by two pieces of code at once,
/// and calls such as cancel are served while a run streams (they interleave at the run's awaits).
/// </summary>
/// <remarks>
/// Its compact state (metadata, counts, the active run, the reserved event sequences) is an
/// <see cref="IPersistentState{TState}"/> with an ETag; messages and runs are rows of <see cref="IThreadHistory"/>,
/// events rows of <see cref="IEventLog"/>. Every change writes the rows first, then the state, so a crash between
/// the two leaves rows the state does not know of, which the next activation reconciles
/// (<see cref="OnActivateAsync"/>). A write that finds another activation wrote first (an ETag or a row conflict)
/// deactivates this one without overwriting anything.
/// </remarks>
[GrainType("thread")]
public sealed class ThreadGrain(
    [PersistentState("thread", ThreadGrain.StorageName)] IPersistentState<ThreadGrainState> state,
    IThreadHistory history,
    IEventLog log,
    IThreadIndex index,
    IChatModelProvider models,
    ToolRegistry tools,
    TimeProvider time,
    IOptions<ThreadStreamOptions> streamOptions,
    IOptions<ReminderOptions> reminderOptions,
    IOptions<ThreadRunOptions> runOptions,
    IOptions<ThreadLimitsOptions> limitOptions,
    ActiveRuns activeRuns,
    RunWebhooks webhooks,
    ILogger<ThreadGrain> logger,
    GrainsMetrics metrics) : Grain, IThreadGrain, IRemindable, IIncomingGrainCallFilter
{
    /// <summary>The grain storage provider that holds thread state.</summary>
    public const string StorageName = "threads";

    /// <summary>
    /// The reminder an active run holds, so a thread whose silo died is woken on another even if nobody watches. It
    /// ticks as often as Orleans allows (<see cref="ReminderOptions.MinimumReminderPeriod"/>, a minute unless configured).
    /// </summary>
    public const string ActiveRunReminder = "active-run";

    /// <summary>How many runs may wait on one thread (strategies <c>enqueue</c> and <c>steer</c>); more are refused.</summary>
    public const int QueueCapacity = 32;

    private readonly SemaphoreSlim _writeGate = new(1, 1);

    // Held while deciding whether a run starts and starting it: a send and the start of a queued run never race.
    private readonly SemaphoreSlim _startGate = new(1, 1);
    private ThreadEventStream? _stream;
    private ActiveRun? _activeRun;
    private bool _resuming;

    // A run that ended here but whose end could not be stored: stored by the next reminder tick or send.
    private RunRecord? _unstoredEnd;

    private string ThreadId => this.GetPrimaryKeyString();

    private bool Exists => state.State.Id is not null;

    private int MessageCount => state.State.MessageCount;

    private QueuedRun[] Queue => state.State.Queue;

    private TimeSpan ClientToolTimeout => runOptions.Value.ClientToolTimeout;

    private void LogRequiresAction(string runId, int calls) => Log.RunRequiresAction(logger, ThreadId, runId, calls);

    private DateTimeOffset Now() => time.GetUtcNow();

    private ThreadEventStream Stream => _stream ?? throw new InvalidOperationException("The grain is not active.");

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _stream = new ThreadEventStream(ThreadId, log, streamOptions.Value, time, logger)
        {
            Reserve = ReserveSequencesAsync,
        };
        if (!Exists)
        {
            return;
        }

        var lastSequence = await log.GetLastSequenceAsync(ThreadId, cancellationToken);
        _stream.Start(lastSequence, state.State.ReservedSequence);
        await ReconcileAsync(cancellationToken);
        await EnsureIndexedAsync(cancellationToken);
        if (state.State.Queue.Length > 0)
        {
            // Queued runs go on once the activation is up (not inside it).
            this.RegisterGrainTimer(_ => StartNextQueuedAsync(), new GrainTimerCreationOptions(TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = true });
        }
    }

    /// <summary>
    /// After every call: an activation of a thread that does not exist goes as soon as it is idle, so calls for ids
    /// that name no thread (a typo, a scan, a flood of made-up ids) leave nothing behind in memory.
    /// </summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            await context.Invoke();
        }
        finally
        {
            if (!Exists)
            {
                DeactivateOnIdle();
            }
        }
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_unstoredEnd is not null)
        {
            // Last chance: otherwise the next activation finds the run active and ends it from what was recorded.
            await TryStoreUnstoredEndAsync(cancellationToken);
        }

        if (_activeRun is { } run)
        {
            run.Interrupt(new RunError(
                RunErrorCodes.Interrupted,
                reason.ReasonCode == DeactivationReasonCode.ShuttingDown
                    ? "The server shut down while the run was in progress."
                    : $"The run was interrupted: its thread was deactivated ({reason.Description})."));
            try
            {
                await run.Completion.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Log.RunNotEndedOnDeactivation(logger, ThreadId, run.RunId);
            }
        }

        if (_stream is { } stream)
        {
            try
            {
                await stream.FlushAsync(cancellationToken);
                if (Exists && stream.ReservedThrough > stream.LastSequence && _activeRun is null)
                {
                    // Hand back what this activation reserved and did not use, so numbering stays dense across
                    // deactivations; only a crash leaves a gap.
                    await WriteStateAsync(s => s with { ReservedSequence = stream.LastSequence }, cancellationToken);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or StorageUnavailableException or InconsistentStateException)
            {
                Log.StreamNotFlushedOnDeactivation(logger, ex, ThreadId);
            }
            finally
            {
                stream.Close();
            }
        }
    }

    /// <summary>
    /// Ends every watch of this activation, and any that starts after: its deactivation has begun
    /// (<see cref="WatchesEndOnDeactivation"/>). Watchers call again and reach the next activation.
    /// </summary>
    internal void EndWatches() => _stream?.EndWatches();

    /// <inheritdoc />
    public async Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default)
    {
        if (Exists)
        {
            return null;
        }

        var now = time.GetUtcNow();
        var messages = (command.Messages ?? [])
            .Select((m, i) => new ThreadMessage(Ids.NewMessageId(), i + 1, m.Role, m.Content, now))
            .ToList();
        var created = new ThreadGrainState
        {
            Id = ThreadId,
            CreatedAt = now,
            UpdatedAt = now,
            Metadata = command.Metadata is null ? new Dictionary<string, string>() : new Dictionary<string, string>(command.Metadata),
            MessageCount = messages.Count,
            Agent = command.Agent,
            Owner = command.Owner,
        };
        if (await history.GetLastOrdinalAsync(ThreadId, cancellationToken) is > 0 and var leftover)
        {
            // A create whose state write never happened left its messages: the thread was never created, so they go.
            // The state write first proves that no other activation created it meanwhile.
            await WriteStateAsync(s => s, cancellationToken);
            await history.RemoveAsync(ThreadId, 1, [], cancellationToken);
            Log.UncommittedRowsRemoved(logger, ThreadId, leftover, 0);
        }

        var lastSequence = await log.GetLastSequenceAsync(ThreadId, cancellationToken);
        await CommitAsync(_ => created, messages, [], cancellationToken);
        Stream.Start(lastSequence, 0);
        await IndexAsync();
        return ThreadSnapshot.From(ThreadId, created);
    }

    /// <inheritdoc />
    public Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(Exists ? ThreadSnapshot.From(ThreadId, state.State) with { LastSequence = Stream.LastSequence } : null);

    /// <inheritdoc />
    public async Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return null;
        }

        var afterOrdinal = 0;
        if (request.After is not null)
        {
            var ordinal = await history.FindMessageOrdinalAsync(ThreadId, request.After, cancellationToken);
            if (ordinal is null)
            {
                return new MessagePage([], false) { UnknownAfter = true };
            }

            afterOrdinal = ordinal.Value;
        }

        var limit = Math.Clamp(request.Limit, 1, 1000);
        var page = await history.ReadMessagesAsync(ThreadId, afterOrdinal, limit + 1, cancellationToken);
        return new MessagePage(page.Take(limit).ToList(), page.Count > limit);
    }

    /// <inheritdoc />
    public async Task<SubmitToolOutputsResult> SubmitToolOutputsAsync(string runId, IReadOnlyList<ToolOutput> outputs, CancellationToken cancellationToken = default)
    {
        if (!Exists || await GetRunAsync(runId, cancellationToken) is null)
        {
            return new SubmitToolOutputsResult.RunNotFound();
        }

        var ids = outputs.Select(o => o.ToolCallId).ToList();
        if (_activeRun is not { } active || active.RunId != runId)
        {
            return new SubmitToolOutputsResult.NotWaiting(ids, "The run is not active: it waits for no tool output.");
        }

        var duplicates = ids.GroupBy(id => id, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
        {
            return new SubmitToolOutputsResult.NotWaiting(duplicates, "Each tool call takes one output.");
        }

        var notAwaited = active.NotAwaited(ids);
        if (notAwaited.Count > 0)
        {
            return new SubmitToolOutputsResult.NotWaiting(notAwaited, "The run waits for no output of these tool calls (unknown, or answered already).");
        }

        active.Submit(outputs);
        return new SubmitToolOutputsResult.Accepted(active.Record);
    }

    /// <inheritdoc />
    public async Task<RunPage?> ListRunsAsync(int offset, int limit, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return null;
        }

        offset = Math.Max(0, offset);
        limit = Math.Clamp(limit, 1, 1000);
        var queued = Queue.Reverse().Skip(offset).Take(limit + 1).Select(q => q.ToRecord(ThreadId)).ToList();
        if (queued.Count <= limit)
        {
            var stored = await history.ReadRunsAsync(ThreadId, Math.Max(0, offset - Queue.Length), limit + 1 - queued.Count, cancellationToken);
            queued.AddRange(stored.Select(r => r.Id == _activeRun?.RunId ? _activeRun.Record : r));
        }

        return new RunPage(queued.Take(limit).ToList(), queued.Count > limit);
    }

    /// <inheritdoc />
    public async Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        !Exists ? null
        : _activeRun?.RunId == runId ? _activeRun.Record
        : state.State.Queue.FirstOrDefault(q => q.RunId == runId) is { } queued ? queued.ToRecord(ThreadId)
        : await history.ReadRunAsync(ThreadId, runId, cancellationToken);

    /// <inheritdoc />
    public async Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return new AppendMessagesResult.ThreadNotFound();
        }

        if (BusyRunId is { } busy)
        {
            return new AppendMessagesResult.Rejected(busy);
        }

        var now = time.GetUtcNow();
        var first = state.State.MessageCount + 1;
        var stored = messages
            .Select((m, i) => new ThreadMessage(Ids.NewMessageId(), first + i, m.Role, m.Content, now))
            .ToList();
        if (limitOptions.Value.Exceeded(state.State, 0, stored.Count, stored.Sum(ThreadLimitsOptions.BytesOf)) is { } limit)
        {
            return new AppendMessagesResult.LimitExceeded(limit);
        }

        if (stored.Count > 0)
        {
            await CommitAsync(s => s with { MessageCount = s.MessageCount + stored.Count, UpdatedAt = now }, stored, [], cancellationToken);
            await IndexAsync();
        }

        return new AppendMessagesResult.Appended(stored);
    }

    /// <summary>The run that makes the thread busy: the active one, else the next queued; null when idle.</summary>
    private string? BusyRunId => _activeRun?.RunId ?? state.State.ActiveRunId ?? (state.State.Queue.Length > 0 ? state.State.Queue[0].RunId : null);

    /// <inheritdoc />
    public async Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return new SendMessageResult.ThreadNotFound();
        }

        var agentName = command.Agent ?? state.State.Agent ?? AgentDefinition.DefaultName;
        var agent = await GrainFactory.GetGrain<IAgentCatalogGrain>(IAgentCatalogGrain.Key).GetAsync(agentName, cancellationToken);
        if (agent is null)
        {
            return new SendMessageResult.AgentNotFound(agentName);
        }

        if (command.Webhook is { } webhook)
        {
            if (!Uri.TryCreate(webhook, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                return new SendMessageResult.Invalid("webhook", "webhook must be an absolute http or https URL.");
            }

            if (!webhooks.Enabled)
            {
                return new SendMessageResult.Invalid("webhook", "Webhooks are off on this server: it has no signing key (Webhooks:SigningSecret).");
            }
        }

        await _startGate.WaitAsync(cancellationToken);
        try
        {
            if (_unstoredEnd is not null && !await TryStoreUnstoredEndAsync(cancellationToken))
            {
                throw new StorageUnavailableException($"The end of the last run of thread '{ThreadId}' is not stored yet; retry.");
            }

            if (command.RunId is { } requestedRunId && await FindRunAsync(requestedRunId, cancellationToken) is { } existing)
            {
                // Sent again (a retry whose first delivery was taken): answer as before.
                return existing;
            }

            if (command.ExpectedLastSequence is { } expectedSequence && expectedSequence != Stream.LastSequence)
            {
                return new SendMessageResult.Conflict("expectedLastSequence", Stream.LastSequence, await LastMessageIdAsync(cancellationToken));
            }

            if (command.ExpectedLastMessageId is { } expectedMessage
                && await LastMessageIdAsync(cancellationToken) is var lastMessageId && lastMessageId != expectedMessage)
            {
                return new SendMessageResult.Conflict("expectedLastMessageId", Stream.LastSequence, lastMessageId);
            }

            // Queued messages count: each will be stored when its run starts.
            var waiting = state.State.Queue.Length;
            if (limitOptions.Value.Exceeded(state.State, waiting, 1, System.Text.Encoding.UTF8.GetByteCount(command.Content)) is { } limit)
            {
                return new SendMessageResult.LimitExceeded(limit);
            }

            if (BusyRunId is not { } busy)
            {
                return await StartRunAsync(command, agent, null, cancellationToken);
            }

            switch (command.MultitaskStrategy ?? agent.MultitaskStrategy)
            {
                case MultitaskStrategies.Steer when _activeRun is { } steered:
                    return await EnqueueAsync(command, agent.Name, steered.RunId, cancellationToken);
                case MultitaskStrategies.Enqueue or MultitaskStrategies.Steer:
                    return await EnqueueAsync(command, agent.Name, null, cancellationToken);
                case MultitaskStrategies.Interrupt:
                    await SupersedeAsync(rollback: false, cancellationToken);
                    return await StartRunAsync(command, agent, null, cancellationToken);
                case MultitaskStrategies.Rollback:
                    await SupersedeAsync(rollback: true, cancellationToken);
                    return await StartRunAsync(command, agent, null, cancellationToken);
                default:
                    return new SendMessageResult.Rejected(busy);
            }
        }
        finally
        {
            _startGate.Release();
        }
    }

    /// <summary>What a send with this run id was answered, when the run exists (active, queued or stored).</summary>
    private async Task<SendMessageResult.Accepted?> FindRunAsync(string runId, CancellationToken cancellationToken) =>
        await GetRunAsync(runId, cancellationToken) switch
        {
            null => null,
            { Status: RunStatuses.Queued } queued => new SendMessageResult.Accepted(runId, queued.UserMessageId, Stream.NextSequence) { Status = RunStatuses.Queued },
            var run => new SendMessageResult.Accepted(runId, run.UserMessageId, run.StartSequence),
        };

    private async Task<string?> LastMessageIdAsync(CancellationToken cancellationToken) =>
        MessageCount == 0 ? null : (await history.ReadMessagesAsync(ThreadId, MessageCount - 1, 1, cancellationToken)).FirstOrDefault()?.Id;

    /// <summary>
    /// Starts a run now: stores the user message and the run, then runs the agent loop in the background.
    /// <paramref name="queued"/> is the queue entry the run comes from (its ids, and it leaves the queue in the same write).
    /// </summary>
    private async Task<SendMessageResult.Accepted> StartRunAsync(SendMessage command, AgentDefinition agent, QueuedRun? queued, CancellationToken cancellationToken)
    {
        agent = agent with
        {
            Model = command.Model ?? agent.Model,
            Temperature = command.Temperature ?? agent.Temperature,
            MaxTokens = command.MaxTokens ?? agent.MaxTokens,
            MaxParallelTools = command.MaxParallelTools is { } maxParallelTools ? Math.Max(1, maxParallelTools) : agent.MaxParallelTools,
        };
        var model = models.Resolve(agent.Model);
        var now = time.GetUtcNow();
        var runId = queued?.RunId ?? command.RunId ?? Ids.NewRunId();
        var userMessage = new ThreadMessage(queued?.UserMessageId ?? Ids.NewMessageId(), state.State.MessageCount + 1, MessageRoles.User, command.Content, now) { RunId = runId };
        var run = new RunRecord(runId, ThreadId, agent.Name, userMessage.Id, now) { StartSequence = Stream.NextSequence, Webhook = command.Webhook, Model = model.Name };

        // Durable first: the user message and the run exist before anyone hears of them; the same state write
        // reserves the sequences the run's events will use.
        var reservation = Stream.ReservationFor(streamOptions.Value.ReservationBlock);
        await CommitAsync(
            s => s with
            {
                MessageCount = userMessage.Ordinal,
                ActiveRunId = runId,
                LastRunId = runId,
                UpdatedAt = now,
                ReservedSequence = Math.Max(s.ReservedSequence, reservation),
                Queue = queued is null ? s.Queue : [.. s.Queue.Where(q => q.RunId != runId)],
            },
            [userMessage],
            [run],
            cancellationToken);
        Stream.Reserved(reservation);
        await EnsureReminderAsync(runId, cancellationToken);

        var started = await Stream.AppendAsync(
            new RunStarted { ThreadId = ThreadId, RunId = runId, UserMessageId = userMessage.Id, Agent = agent.Name, Model = model.Name });
        var current = new ActiveRun(run with { StartSequence = started.Sequence }, model.Name);
        _activeRun = current;
        Log.RunStarted(logger, ThreadId, runId, agent.Name, model.Name);
        metrics.RunStarted(agent.Name, model.Name);
        await ReportAsync(Activity(RunActivityKinds.Started, current.Record, model.Name));
        current.Completion = ExecuteRunAsync(current, agent, model);
        activeRuns.Add(current, reason => current.Interrupt(new RunError(RunErrorCodes.Interrupted, reason)), () => current.Completion);
        await IndexAsync();
        return new SendMessageResult.Accepted(runId, userMessage.Id, started.Sequence);
    }

    /// <summary>Queues a run (or, with <paramref name="steers"/>, a message for the active run to take at its next model call).</summary>
    private async Task<SendMessageResult> EnqueueAsync(SendMessage command, string agentName, string? steers, CancellationToken cancellationToken)
    {
        if (state.State.Queue.Length >= QueueCapacity)
        {
            return new SendMessageResult.Rejected(BusyRunId!) { Reason = $"The thread's queue is full ({QueueCapacity} runs wait already)." };
        }

        var now = time.GetUtcNow();
        var queued = new QueuedRun(command.RunId ?? Ids.NewRunId(), Ids.NewMessageId(), agentName, command, now) { Steers = steers };
        var position = state.State.Queue.Length;
        await WriteStateAsync(s => s with { Queue = [.. s.Queue, queued], UpdatedAt = now }, cancellationToken);
        await EnsureReminderAsync(queued.RunId, cancellationToken);
        if (steers is not null)
        {
            Log.RunSteering(logger, ThreadId, steers, queued.UserMessageId);
            return new SendMessageResult.Accepted(steers, queued.UserMessageId, Stream.NextSequence) { Steered = true };
        }

        var announced = await Stream.AppendAsync(
            new RunQueued { ThreadId = ThreadId, RunId = queued.RunId, UserMessageId = queued.UserMessageId, Position = position });
        Log.RunQueued(logger, ThreadId, queued.RunId, position);
        return new SendMessageResult.Accepted(queued.RunId, queued.UserMessageId, announced.Sequence) { Status = RunStatuses.Queued };
    }

    /// <summary>
    /// Strategies <c>interrupt</c> and <c>rollback</c>: every queued run is cancelled, the active run is cancelled and
    /// awaited (its partial output kept and marked cancelled); with <paramref name="rollback"/> its messages and its
    /// run are then removed.
    /// </summary>
    private async Task SupersedeAsync(bool rollback, CancellationToken cancellationToken)
    {
        var reason = rollback ? "rolled back by a newer message" : "interrupted by a newer message";
        await CancelQueuedAsync([.. state.State.Queue], reason, cancellationToken);
        if (_activeRun is not { } active)
        {
            return;
        }

        active.Cancel(reason);
        await active.Completion;
        if (rollback)
        {
            await RollBackAsync(active.Record, cancellationToken);
        }
    }

    /// <summary>Removes an ended run's messages (from its user message on) and the run itself; watchers hear <c>run.rolled_back</c>.</summary>
    private async Task RollBackAsync(RunRecord run, CancellationToken cancellationToken)
    {
        if (await history.FindMessageOrdinalAsync(ThreadId, run.UserMessageId, cancellationToken) is not { } from)
        {
            return;
        }

        var removed = MessageCount - from + 1;
        var now = time.GetUtcNow();
        // The state first (the commit point), then the rows: a crash between the two leaves rows the next activation removes.
        await WriteStateAsync(s => s with { MessageCount = from - 1, LastRunId = null, UpdatedAt = now }, cancellationToken);
        await history.RemoveAsync(ThreadId, from, [run.Id], cancellationToken);
        await Stream.AppendDurableAsync(new RunRolledBack { ThreadId = ThreadId, RunId = run.Id, FromOrdinal = from, RemovedMessages = removed });
        Log.RunRolledBack(logger, ThreadId, run.Id, removed);
        await IndexAsync();
    }

    /// <summary>Takes queued runs off the queue for good: each is stored as cancelled and watchers hear <c>run.cancelled</c>.</summary>
    private async Task<List<RunRecord>> CancelQueuedAsync(IReadOnlyList<QueuedRun> runs, string reason, CancellationToken cancellationToken)
    {
        if (runs.Count == 0)
        {
            return [];
        }

        var now = time.GetUtcNow();
        var ids = runs.Select(r => r.RunId).ToHashSet(StringComparer.Ordinal);
        var cancelled = runs.Select(r => r.ToRecord(ThreadId) with { Status = RunStatuses.Cancelled, EndedAt = now }).ToList();
        // Off the queue first: once that is stored, the runs can never start; then their records, for GET.
        await WriteStateAsync(s => s with { Queue = [.. s.Queue.Where(q => !ids.Contains(q.RunId))], UpdatedAt = now }, cancellationToken);
        await history.AppendAsync(ThreadId, [], cancelled, cancellationToken);
        foreach (var run in cancelled)
        {
            await Stream.AppendDurableAsync(new RunCancelled { ThreadId = ThreadId, RunId = run.Id, Reason = reason });
            Log.RunCancelled(logger, ThreadId, run.Id);
            webhooks.Enqueue(ThreadId, run, null);
        }

        return cancelled;
    }

    /// <summary>Starts the next queued run when no run is active; a failure leaves it queued for the reminder to retry.</summary>
    private async Task StartNextQueuedAsync()
    {
        await _startGate.WaitAsync();
        try
        {
            // A run that is active in the state but not here is being resumed: the queue waits for it.
            while (_activeRun is null && state.State.ActiveRunId is null && state.State.Queue.Length > 0)
            {
                var next = state.State.Queue[0];
                var agent = await GrainFactory.GetGrain<IAgentCatalogGrain>(IAgentCatalogGrain.Key).GetAsync(next.Agent);
                if (agent is null)
                {
                    // Its agent went while it waited: it cannot start, and says why.
                    var failed = next.ToRecord(ThreadId) with
                    {
                        Status = RunStatuses.Failed,
                        EndedAt = time.GetUtcNow(),
                        Error = new RunError(RunErrorCodes.Internal, $"The run could not start: no agent is named '{next.Agent}' any more."),
                    };
                    await WriteStateAsync(s => s with { Queue = [.. s.Queue.Where(q => q.RunId != next.RunId)] }, CancellationToken.None);
                    await history.AppendAsync(ThreadId, [], [failed], CancellationToken.None);
                    await Stream.AppendDurableAsync(new RunFailed { ThreadId = ThreadId, RunId = next.RunId, Error = failed.Error! });
                    webhooks.Enqueue(ThreadId, failed, null);
                    continue;
                }

                await StartRunAsync(next.Command, agent, next, CancellationToken.None);
            }
        }
        catch (Exception ex)
        {
            Log.QueuedRunNotStarted(logger, ex, ThreadId);
        }
        finally
        {
            _startGate.Release();
        }
    }

    private async Task EnsureReminderAsync(string runId, CancellationToken cancellationToken)
    {
        try
        {
            var period = reminderOptions.Value.MinimumReminderPeriod;
            await this.RegisterOrUpdateReminder(ActiveRunReminder, period, period, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The reminder only wakes the thread if its silo dies; the run goes on without it.
            Log.ReminderNotRegistered(logger, ex, ThreadId, runId);
        }
    }

    /// <inheritdoc />
    public async Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return new CancelRunResult.NotFound();
        }

        if (_activeRun is { } active && active.RunId == runId)
        {
            active.Cancel("cancelled by request");
            return new CancelRunResult.Cancelling(active.Record);
        }

        if (state.State.Queue.FirstOrDefault(q => q.RunId == runId) is { } queued)
        {
            var cancelled = await CancelQueuedAsync([queued], "cancelled before it started", cancellationToken);
            return new CancelRunResult.Dequeued(cancelled[0]);
        }

        var stored = await history.ReadRunAsync(ThreadId, runId, cancellationToken);
        return stored is null ? new CancelRunResult.NotFound() : new CancelRunResult.AlreadyEnded(stored);
    }

    /// <inheritdoc />
    public async Task<ThreadSnapshot?> UpdateMetadataAsync(IReadOnlyDictionary<string, string?> patch, CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return null;
        }

        var metadata = new Dictionary<string, string>(state.State.Metadata);
        foreach (var (key, value) in patch)
        {
            if (value is null)
            {
                metadata.Remove(key);
            }
            else
            {
                metadata[key] = value;
            }
        }

        var now = Now();
        await WriteStateAsync(s => s with { Metadata = metadata, UpdatedAt = now }, cancellationToken);
        await IndexAsync();
        return ThreadSnapshot.From(ThreadId, state.State) with { LastSequence = Stream.LastSequence };
    }

    /// <inheritdoc />
    /// <remarks>
    /// The rows go before the state, the commit point: a failure part way leaves the thread in place (answering,
    /// maybe with part of its history gone) rather than rows nobody can reach, and a retry finishes the erasure.
    /// Watchers hear every run end before their watch ends: the events are delivered (and written) before the stream
    /// closes, and only then is anything erased.
    /// </remarks>
    public async Task<bool> DeleteAsync(CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            return false;
        }

        // No run starts meanwhile (a send, the next queued run, a resumed run all take this gate).
        await _startGate.WaitAsync(cancellationToken);
        try
        {
            const string reason = "the thread was deleted";
            await CancelQueuedAsync([.. Queue], reason, cancellationToken);
            if (_activeRun is { } active)
            {
                active.Cancel(reason);
                await active.Completion;
            }

            _unstoredEnd = null;
            await Stream.FlushAsync(cancellationToken);
            _deleted = true;
            Stream.Close();
            // An index write under way ends first; any later one sees _deleted and writes nothing.
            await _indexGate.WaitAsync(cancellationToken);
            _indexGate.Release();
            await index.EraseAsync(ThreadId, cancellationToken);
            await UnregisterActiveRunReminderAsync();
            await _writeGate.WaitAsync(cancellationToken);
            try
            {
                await state.ClearStateAsync(cancellationToken);
            }
            catch (InconsistentStateException ex)
            {
                Log.ConcurrentWriter(logger, ex, ThreadId);
                throw new StorageUnavailableException($"Thread '{ThreadId}' was written by another activation; retry.");
            }
            finally
            {
                _writeGate.Release();
            }

            Log.ThreadDeleted(logger, ThreadId);
            return true;
        }
        finally
        {
            _startGate.Release();
            if (_deleted)
            {
                // Its stream is closed: a thread that was (or is being) erased is served by a fresh activation.
                DeactivateOnIdle();
            }
        }
    }

    // Set once DeleteAsync begins erasing: the index is not written again.
    private bool _deleted;

    private readonly SemaphoreSlim _indexGate = new(1, 1);

    // The thread's first user message (ordinal, title); still the first while the thread has at least that many messages.
    private (int Ordinal, string? Title)? _firstUser;

    /// <summary>
    /// Writes the thread's row of the index from its state and the ends of its history. A failure is logged and
    /// left: the next change, or the next activation, writes the row again (a listing lags; the thread is unharmed).
    /// Never cancelled by a caller: the change it follows is stored, and a caller that went away must not leave the
    /// listing behind it.
    /// </summary>
    private async Task IndexAsync()
    {
        var cancellationToken = CancellationToken.None;
        if (!Exists || _deleted)
        {
            return;
        }

        // One write at a time, each from the state as it is when its turn comes: the last row written is the latest.
        await _indexGate.WaitAsync(cancellationToken);
        try
        {
            var current = state.State;
            var title = current.Metadata.TryGetValue("title", out var given) ? ThreadSummary.Truncate(given, ThreadSummary.TitleLength) : null;
            title ??= await FirstUserTitleAsync(current.MessageCount, cancellationToken);
            const int window = 8;
            var recent = current.MessageCount == 0
                ? []
                : await history.ReadMessagesAsync(ThreadId, Math.Max(0, current.MessageCount - window), window, cancellationToken);
            var last = recent.LastOrDefault(m => m.Role is MessageRoles.User or MessageRoles.Assistant && !string.IsNullOrWhiteSpace(m.Content));
            if (_deleted)
            {
                return;
            }

            await index.UpsertAsync(
                new ThreadSummary(ThreadId, current.CreatedAt, current.UpdatedAt, current.Metadata, current.MessageCount, title, ThreadSummary.Truncate(last?.Content, ThreadSummary.PreviewLength))
                {
                    Owner = current.Owner,
                },
                cancellationToken);
        }
        catch (Exception ex)
        {
            Log.ThreadNotIndexed(logger, ex, ThreadId);
        }
        finally
        {
            _indexGate.Release();
        }
    }

    private async Task<string?> FirstUserTitleAsync(int messageCount, CancellationToken cancellationToken)
    {
        if (_firstUser is { } known && messageCount >= known.Ordinal)
        {
            return known.Title;
        }

        _firstUser = null;
        const int scan = 32;
        var first = messageCount == 0 ? [] : await history.ReadMessagesAsync(ThreadId, 0, scan, cancellationToken);
        if (first.FirstOrDefault(m => m.Role == MessageRoles.User) is { } user)
        {
            _firstUser = (user.Ordinal, ThreadSummary.Truncate(user.Content, ThreadSummary.TitleLength));
            return _firstUser.Value.Title;
        }

        return null;
    }

    /// <summary>
    /// On activation: writes the index row when it is missing (a thread created before the index existed, or whose
    /// last index write failed) or behind the state.
    /// </summary>
    private async Task EnsureIndexedAsync(CancellationToken cancellationToken)
    {
        try
        {
            var row = await index.GetAsync(ThreadId, cancellationToken);
            if (row is not null && row.MessageCount == state.State.MessageCount
                && (row.UpdatedAt - state.State.UpdatedAt).Duration() < TimeSpan.FromMilliseconds(1))
            {
                return;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The thread activates all the same; the row is written at its next change.
            Log.ThreadNotIndexed(logger, ex, ThreadId);
            return;
        }

        await IndexAsync();
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ThreadEvent> WatchAsync(long afterSequence, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!Exists)
        {
            yield break;
        }

        await foreach (var next in Stream.WatchAsync(afterSequence, cancellationToken))
        {
            yield return next;
        }
    }

    /// <inheritdoc />
    public async Task<List<ThreadEvent>> ReadEventsAsync(long afterSequence, long throughSequence, int limit, CancellationToken cancellationToken = default) =>
        Exists ? await Stream.ReadAsync(afterSequence, throughSequence, Math.Clamp(limit, 1, 1000), cancellationToken) : [];

    /// <inheritdoc />
    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ActiveRunReminder || _activeRun is not null || _resuming)
        {
            return;
        }

        if (_unstoredEnd is not null)
        {
            // The run ended here but its end could not be stored: try again; the reminder stays until it is.
            if (await TryStoreUnstoredEndAsync(CancellationToken.None) && state.State.Queue.Length == 0)
            {
                await UnregisterActiveRunReminderAsync();
            }
            else if (state.State.Queue.Length > 0 && state.State.ActiveRunId is null)
            {
                await StartNextQueuedAsync();
            }

            return;
        }

        if (state.State.ActiveRunId is not null)
        {
            // Active in the state, not here, not being resumed: the next activation sorts it out (ReconcileAsync).
            DeactivateOnIdle();
            return;
        }

        if (state.State.Queue.Length > 0)
        {
            await StartNextQueuedAsync();
            return;
        }

        // Activating the grain already ended a run its previous activation lost (OnActivateAsync); a reminder
        // that finds no run here has done its job.
        await UnregisterActiveRunReminderAsync();
    }

    /// <summary>Stores the end of a run that ended here while the storage was away; true once it is stored.</summary>
    private async Task<bool> TryStoreUnstoredEndAsync(CancellationToken cancellationToken)
    {
        if (_unstoredEnd is not { } ended)
        {
            return true;
        }

        try
        {
            await CommitAsync(s => s with { ActiveRunId = s.ActiveRunId == ended.Id ? null : s.ActiveRunId, UpdatedAt = time.GetUtcNow() }, [], [ended], cancellationToken);
            _unstoredEnd = null;
            Log.RunEndStoredLate(logger, ThreadId, ended.Id, ended.Status);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.RunEndNotStored(logger, ex, ThreadId, ended.Id);
            return false;
        }
    }

    private async Task ExecuteRunAsync(ActiveRun run, AgentDefinition agent, IChatModel model)
    {
        // The run owns its lifetime: it is stopped by a cancel or a deactivation, never by the caller that started it.
        await Task.Yield();
        // Every line the run logs (model, tools, webhooks) carries its ids; its span is a child of the grain call
        // that started it (so of that HTTP request), though it outlives it.
        using var logScope = Log.RunScope(logger, ThreadId, run.RunId, RuntimeIdentity);
        using var span = GrainsActivities.Source.StartActivity($"invoke_agent {agent.Name}");
        span?.SetTag(GrainsMetrics.Tags.Operation, "invoke_agent");
        span?.SetTag(GrainsMetrics.Tags.Agent, agent.Name);
        span?.SetTag(GrainsMetrics.Tags.Model, model.Name);
        span?.SetTag("conversations.thread.id", ThreadId);
        span?.SetTag("conversations.run.id", run.RunId);
        var sink = new RunSink(this, run);
        ThreadEvent terminal;
        RunRecord ended;
        try
        {
            IReadOnlyList<ThreadMessage> context = await history.ReadMessagesAsync(ThreadId, 0, int.MaxValue, run.Token);
            if (run.Record.Resumes > 0
                && context.LastOrDefault(m => m.RunId == run.RunId) is { Role: MessageRoles.Tool } or { Role: MessageRoles.Assistant, ToolCalls.Count: > 0 })
            {
                // Lost in (or right after) a tool batch: the resumed run's first model call is the one after those
                // tool calls, so the messages that steered the run meanwhile join it there. (Lost in a model call, the
                // call is made again as it was, and a waiting steer is answered by one more, as without the loss.)
                context = [.. context, .. await sink.JoinSteeredAsync(run.Token)];
            }

            var loop = new AgentLoop(model, tools, time) { HistoryBudgetTokens = agent.HistoryBudget, Metrics = metrics };
            // A resumed run goes on counting its model calls from the ones it recorded (a new run has none).
            var firstDepth = context.Count(m => m.RunId == run.RunId && m.Role == MessageRoles.Assistant) + 1;
            var result = await loop.RunAsync(ThreadId, run.RunId, agent, context, sink, run.Token, firstDepth);
            ended = run.Record with { Status = RunStatuses.Completed, StopReason = result.StopReason, Usage = result.Usage };
            terminal = new RunCompleted { ThreadId = ThreadId, RunId = run.RunId, StopReason = result.StopReason, Usage = result.Usage };
            Log.RunCompleted(logger, ThreadId, run.RunId, result.StopReason);
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            if (run.InterruptedBy is { } error)
            {
                (ended, terminal) = Failed(run, error, sink.Usage);
            }
            else
            {
                ended = run.Record with { Status = RunStatuses.Cancelled, Usage = sink.Usage };
                terminal = new RunCancelled { ThreadId = ThreadId, RunId = run.RunId, Reason = run.CancelReason, Usage = sink.Usage };
                Log.RunCancelled(logger, ThreadId, run.RunId);
            }
        }
        catch (ModelException ex)
        {
            (ended, terminal) = Failed(run, new RunError(ex.Code, ex.Message), sink.Usage);
        }
        catch (RunLimitException ex)
        {
            (ended, terminal) = Failed(run, new RunError(ex.Code, ex.Message), sink.Usage);
        }
        catch (StorageUnavailableException)
        {
            (ended, terminal) = Failed(run, new RunError(RunErrorCodes.Internal, "The run failed: the storage became unavailable."), sink.Usage);
        }
        catch (Exception ex)
        {
            var error = new RunError(RunErrorCodes.Internal, "The run failed because of an internal error.");
            ended = run.Record with { Status = RunStatuses.Failed, Error = error, Usage = sink.Usage };
            terminal = new RunFailed { ThreadId = ThreadId, RunId = run.RunId, Error = error, Usage = sink.Usage };
            Log.RunCrashed(logger, ex, ThreadId, run.RunId);
        }

        ended = ended with { EndedAt = time.GetUtcNow() };
        metrics.RunEnded(ended, run.Model, run.CancelReason);
        span?.SetTag("conversations.run.status", ended.Status);
        if (ended.Error is { } runError)
        {
            span?.SetStatus(ActivityStatusCode.Error, runError.Code);
        }

        var endStored = false;
        try
        {
            await CommitAsync(s => s with { ActiveRunId = null, UpdatedAt = ended.EndedAt.Value }, [], [ended], CancellationToken.None);
            endStored = true;
        }
        catch (Exception ex)
        {
            Log.RunEndNotStored(logger, ex, ThreadId, run.RunId);
            _unstoredEnd = ended;
        }
        finally
        {
            _activeRun = null;
        }

        // Before the end is announced: a client that lists its threads once the run ended sees the run's answer.
        await IndexAsync();
        try
        {
            // Every watcher hears how the run ended, even when its end could not be stored (the next activation then
            // ends it again as interrupted: a watcher may hear of the end twice, never not at all).
            await Stream.AppendDurableAsync(terminal);
        }
        finally
        {
            activeRuns.Remove(run);
        }

        await ReportAsync(Activity(ended.Status, ended, run.Model));
        webhooks.Enqueue(ThreadId, ended, sink.LastAssistantMessage);

        if (run.InterruptedBy is not null || !endStored)
        {
            // The silo is going away (its reminder service too), or the run's end is not stored: the reminder stays,
            // and the thread's next activation, which it wakes, ends the run if need be and removes it.
            return;
        }

        if (state.State.Queue.Length > 0)
        {
            // The next run's turn; not awaited, so this run's completion (which a superseding send awaits) is not held.
            _ = StartNextQueuedAsync();
            return;
        }

        try
        {
            await UnregisterActiveRunReminderAsync();
        }
        catch (Exception ex)
        {
            Log.ReminderNotRemoved(logger, ex, ThreadId, run.RunId);
        }
    }

    private (RunRecord Ended, ThreadEvent Terminal) Failed(ActiveRun run, RunError error, Usage? usage)
    {
        Log.RunFailed(logger, ThreadId, run.RunId, error.Code, error.Message);
        return (run.Record with { Status = RunStatuses.Failed, Error = error, Usage = usage },
            new RunFailed { ThreadId = ThreadId, RunId = run.RunId, Error = error, Usage = usage });
    }

    /// <summary>
    /// Brings the history in line with the state, the commit point of every change, after a write that stored rows
    /// and then not its state (a crash, a storage failure, another activation that wrote first).
    /// </summary>
    /// <remarks>
    /// Rows the state does not count yet belong to it when they are the output of the state's own run (its active
    /// or last run): they are counted, so partial output is kept. Any other such rows (a message sent or appended,
    /// a run started, whose state write never happened) are of a change the caller was told failed: they are
    /// removed, so a retry stores the message once. A run the state still holds as active that no activation runs
    /// any more fails as interrupted, and every watcher hears. The state is written before anything is removed: its
    /// ETag proves that no other activation accepted those rows in the meantime.
    /// </remarks>
    private async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var current = state.State;
        // The last counted message and every one after it: enough to see how the state's run stands.
        var window = await history.ReadMessagesAsync(ThreadId, Math.Max(0, current.MessageCount - 1), int.MaxValue, cancellationToken);
        var uncounted = window.Where(m => m.Ordinal > current.MessageCount).ToList();
        var unfinished = await history.ReadUnfinishedRunsAsync(ThreadId, cancellationToken);
        var kept = uncounted.TakeWhile(m => m.RunId is not null && (m.RunId == current.ActiveRunId || m.RunId == current.LastRunId)).Count();
        var removeFrom = kept < uncounted.Count ? uncounted[kept].Ordinal : (int?)null;
        var removeRuns = unfinished.Where(r => r.Id != current.ActiveRunId).Select(r => r.Id).ToList();
        var lost = unfinished.Where(r => r.Id == current.ActiveRunId).ToList();
        if (current.ActiveRunId is { } activeRunId && lost.Count == 0
            && await history.ReadRunAsync(ThreadId, activeRunId, cancellationToken) is null)
        {
            lost.Add(new RunRecord(activeRunId, ThreadId, AgentDefinition.DefaultName, string.Empty, time.GetUtcNow()));
        }

        // An active run whose row has ended was stored without the state write that clears it: the state only catches up.
        if (uncounted.Count == 0 && unfinished.Count == 0 && current.ActiveRunId is null)
        {
            return;
        }

        var hadActiveRun = current.ActiveRunId is not null;
        var now = time.GetUtcNow();
        var policy = runOptions.Value;
        // A lost run whose last recorded message shows how it ended (its final answer, or output marked cancelled)
        // had ended: only its end was not stored. It ends as it did. (The state's run wrote last: its messages end the window.)
        var finished = lost.ToDictionary(r => r.Id, r => EndShownBy(window.LastOrDefault(m => m.RunId == r.Id)));
        // Any other lost run goes on from its last recorded step, unless the policy says fail or it was resumed enough.
        var resumed = lost.FirstOrDefault(r => finished[r.Id] is null && policy.OnLostRun == LostRunPolicies.Resume && r.UserMessageId.Length > 0 && r.Resumes < policy.MaxResumes);
        var ended = lost.Where(r => r != resumed).Select(r => finished[r.Id] is { } end
            ? r with { Status = end.Status, StopReason = end.StopReason, EndedAt = now }
            : r with
            {
                Status = RunStatuses.Failed,
                EndedAt = now,
                Error = new RunError(
                    RunErrorCodes.Interrupted,
                    r.Resumes > 0
                        ? "The run was interrupted again after it was resumed: the node running it stopped before it ended."
                        : "The run was interrupted: the node running it stopped before it ended."),
            }).ToList();
        var reservation = Stream.ReservationFor(ended.Count);
        // A steer whose message joined the run before the state write that takes it off the queue: it is not run again.
        var joined = uncounted.Take(kept).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
        await CommitAsync(
            s => s with
            {
                MessageCount = s.MessageCount + kept,
                ActiveRunId = resumed?.Id,
                UpdatedAt = now,
                ReservedSequence = Math.Max(s.ReservedSequence, reservation),
                Queue = [.. s.Queue.Where(q => !joined.Contains(q.UserMessageId))],
            },
            [],
            ended,
            cancellationToken);
        Stream.Reserved(reservation);
        if (removeFrom is not null || removeRuns.Count > 0)
        {
            await history.RemoveAsync(ThreadId, removeFrom ?? int.MaxValue, removeRuns, cancellationToken);
            Log.UncommittedRowsRemoved(logger, ThreadId, uncounted.Count - kept, removeRuns.Count);
        }

        if (resumed is not null)
        {
            // Not inside the activation: once it is up, on the activation's scheduler.
            _resuming = true;
            this.RegisterGrainTimer(_ => ResumeLostRunAsync(resumed), new GrainTimerCreationOptions(TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = true });
        }

        foreach (var run in ended)
        {
            ThreadEvent terminal = run.Status switch
            {
                RunStatuses.Completed => new RunCompleted { ThreadId = ThreadId, RunId = run.Id, StopReason = run.StopReason ?? "stop" },
                RunStatuses.Cancelled => new RunCancelled { ThreadId = ThreadId, RunId = run.Id, Reason = "cancelled" },
                _ => new RunFailed { ThreadId = ThreadId, RunId = run.Id, Error = run.Error! },
            };
            await Stream.AppendDurableAsync(terminal);
            metrics.RunEnded(run, run.Model ?? "unknown");
            if (run.Error is { } error)
            {
                Log.RunFailed(logger, ThreadId, run.Id, error.Code, error.Message);
            }

            await ReportAsync(Activity(run.Status, run, run.Model ?? "unknown"));
            webhooks.Enqueue(ThreadId, run, null);
        }

        if ((lost.Count > 0 || hadActiveRun) && resumed is null && state.State.Queue.Length == 0)
        {
            await UnregisterActiveRunReminderAsync();
        }
    }

    /// <summary>How a run ended, as its last recorded message shows it; null when it shows a run still under way.</summary>
    private static (string Status, string? StopReason)? EndShownBy(ThreadMessage? last) => last switch
    {
        { Status: MessageStatuses.Cancelled } => (RunStatuses.Cancelled, null),
        { Role: MessageRoles.Assistant, Status: MessageStatuses.Completed, ToolCalls: null or { Count: 0 } } => (RunStatuses.Completed, last.FinishReason ?? "stop"),
        _ => null,
    };

    /// <summary>
    /// Goes on with a run whose activation was lost: a new model call over what the run recorded (its messages and
    /// tool results; a call whose result was not recorded is answered to the model as cut off, and never re-run by
    /// us). The attempt is recorded first, so a run lost again fails instead of looping.
    /// </summary>
    private async Task ResumeLostRunAsync(RunRecord lost)
    {
        await _startGate.WaitAsync();
        try
        {
            if (_activeRun is not null || state.State.ActiveRunId != lost.Id)
            {
                return;
            }

            var agent = await GrainFactory.GetGrain<IAgentCatalogGrain>(IAgentCatalogGrain.Key).GetAsync(lost.Agent)
                ?? new AgentDefinition(lost.Agent);
            agent = agent with { Model = lost.Model ?? agent.Model };
            var model = models.Resolve(agent.Model);
            var run = lost with { Resumes = lost.Resumes + 1, Model = model.Name };
            await CommitAsync(s => s with { UpdatedAt = time.GetUtcNow() }, [], [run], CancellationToken.None);
            var current = new ActiveRun(run, model.Name);
            _activeRun = current;
            await Stream.AppendAsync(new AgentStatusChanged
            {
                ThreadId = ThreadId,
                RunId = run.Id,
                Status = AgentStatuses.Resuming,
                Details = new Dictionary<string, object?> { ["attempt"] = run.Resumes, ["model"] = model.Name },
            });
            Log.RunResumed(logger, ThreadId, run.Id, run.Resumes);
            current.Completion = ExecuteRunAsync(current, agent, model);
            activeRuns.Add(current, reason => current.Interrupt(new RunError(RunErrorCodes.Interrupted, reason)), () => current.Completion);
        }
        catch (Exception ex)
        {
            // The run stays active in the state: its reminder wakes the thread again, and the next activation retries.
            Log.RunNotResumed(logger, ex, ThreadId, lost.Id);
        }
        finally
        {
            _resuming = false;
            _startGate.Release();
        }
    }

    private RunActivity Activity(string kind, RunRecord run, string model) =>
        new(kind, ThreadId, run.Id, run.Agent, model, RuntimeIdentity, time.GetUtcNow())
        {
            Usage = run.Usage,
            Error = run.Error,
            Duration = run.EndedAt - run.StartedAt,
        };

    /// <summary>Tells the cluster's monitor (this silo's run-activity stream); monitoring never fails a run.</summary>
    private async Task ReportAsync(RunActivity activity)
    {
        try
        {
            await this.GetStreamProvider(RunActivity.StreamProvider)
                .GetStream<RunActivity>(StreamId.Create(RunActivity.StreamNamespace, RuntimeIdentity))
                .OnNextAsync(activity);
        }
        catch (Exception ex)
        {
            Log.ActivityNotReported(logger, ex, ThreadId, activity.RunId, activity.Kind);
        }
    }

    private async Task UnregisterActiveRunReminderAsync()
    {
        if (await this.GetReminder(ActiveRunReminder) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }
    }

    /// <summary>Reserves event sequences through <paramref name="through"/> with a state write of its own.</summary>
    private async Task<long> ReserveSequencesAsync(long through)
    {
        await WriteStateAsync(s => s with { ReservedSequence = Math.Max(s.ReservedSequence, through) }, CancellationToken.None);
        return state.State.ReservedSequence;
    }

    /// <summary>Writes history rows, then the state changed by <paramref name="change"/>; one writer at a time.</summary>
    private async Task CommitAsync(
        Func<ThreadGrainState, ThreadGrainState> change, IReadOnlyList<ThreadMessage> messages, IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            if (messages.Count > 0 || runs.Count > 0)
            {
                try
                {
                    await history.AppendAsync(ThreadId, messages, runs, cancellationToken);
                }
                catch (HistoryConflictException ex)
                {
                    Log.ConcurrentWriter(logger, ex, ThreadId);
                    DeactivateOnIdle();
                    throw new StorageUnavailableException($"Thread '{ThreadId}' was written by another activation; retry.");
                }
            }

            try
            {
                var bytes = messages.Sum(ThreadLimitsOptions.BytesOf);
                await WriteStateCoreAsync(
                    bytes == 0 ? change : s => change(s) is var next ? next with { ContentBytes = next.ContentBytes + bytes } : next,
                    cancellationToken);
            }
            catch (Exception) when (messages.Count > 0 || runs.Count > 0)
            {
                // The rows are stored and the state that accepts them is not: the change failed. The next activation
                // removes them (ReconcileAsync), so this one goes rather than write on after them.
                DeactivateOnIdle();
                throw;
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private async Task WriteStateAsync(Func<ThreadGrainState, ThreadGrainState> change, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await WriteStateCoreAsync(change, cancellationToken);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private async Task WriteStateCoreAsync(Func<ThreadGrainState, ThreadGrainState> change, CancellationToken cancellationToken)
    {
        var previous = state.State;
        state.State = change(previous);
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch (InconsistentStateException ex)
        {
            // Another activation wrote first: never overwrite; this one goes away and the next reads what is stored.
            state.State = previous;
            Log.ConcurrentWriter(logger, ex, ThreadId);
            DeactivateOnIdle();
            throw new StorageUnavailableException($"Thread '{ThreadId}' was written by another activation; retry.");
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or StorageUnavailableException))
        {
            state.State = previous;
            throw new StorageUnavailableException($"The state of thread '{ThreadId}' could not be stored: {ex.GetType().Name}.");
        }
    }

    /// <summary>Where the agent loop's events and messages go: the stream, and the grain's history.</summary>
    private sealed class RunSink(ThreadGrain grain, ActiveRun run) : IRunSink
    {
        private readonly Monitoring.RunMeter _meter = new(grain.Activity(RunActivityKinds.Started, run.Record, run.Model), grain.Now);

        public Usage? Usage { get; private set; }

        public string CancelledMessageStatus => run.InterruptedBy is null ? MessageStatuses.Cancelled : MessageStatuses.Incomplete;

        public async ValueTask PublishAsync(ThreadEvent threadEvent, CancellationToken cancellationToken)
        {
            if (threadEvent is MessageCompleted completed)
            {
                Usage = Abstractions.Threads.Usage.Add(Usage, completed.Usage);
            }

            await grain.Stream.AppendAsync(threadEvent);
            if (_meter.Observe(threadEvent) is { } activity)
            {
                await grain.ReportAsync(activity);
            }
        }

        public async Task<IReadOnlyList<ThreadMessage>> JoinSteeredAsync(CancellationToken cancellationToken)
        {
            await _appendGate.WaitAsync(cancellationToken);
            try
            {
                return await JoinSteeredCoreAsync(cancellationToken);
            }
            finally
            {
                _appendGate.Release();
            }
        }

        private async Task<IReadOnlyList<ThreadMessage>> JoinSteeredCoreAsync(CancellationToken cancellationToken)
        {
            var steering = grain.Queue.Where(q => q.Steers == run.RunId).ToList();
            if (steering.Count == 0)
            {
                return [];
            }

            var first = grain.MessageCount + 1;
            var messages = steering
                .Select((q, i) => new ThreadMessage(q.UserMessageId, first + i, MessageRoles.User, q.Command.Content, q.QueuedAt) { RunId = run.RunId })
                .ToList();
            var taken = steering.Select(q => q.RunId).ToHashSet(StringComparer.Ordinal);
            var now = grain.Now();
            await grain.CommitAsync(
                s => s with { MessageCount = s.MessageCount + messages.Count, UpdatedAt = now, Queue = [.. s.Queue.Where(q => !taken.Contains(q.RunId))] },
                messages,
                [],
                cancellationToken);
            foreach (var message in messages)
            {
                await grain.Stream.AppendAsync(new RunSteered { ThreadId = grain.ThreadId, RunId = run.RunId, MessageId = message.Id });
            }

            return messages;
        }

        public TimeSpan ClientToolTimeout => grain.ClientToolTimeout;

        public async Task<IReadOnlyDictionary<string, Task<string>>> RequestToolOutputsAsync(IReadOnlyList<ToolCallInfo> calls, CancellationToken cancellationToken)
        {
            // Waiting before anyone is told: an output submitted the moment the event arrives finds its call.
            var outputs = calls.ToDictionary(c => c.Id, c => run.AwaitToolOutput(c.Id), StringComparer.Ordinal);
            await grain.Stream.AppendAsync(new RunRequiresAction
            {
                ThreadId = grain.ThreadId,
                RunId = run.RunId,
                Calls = calls,
                Deadline = grain.Now() + ClientToolTimeout,
            });
            grain.LogRequiresAction(run.RunId, calls.Count);
            return outputs;
        }

        // Numbering and storing are one step: tool calls running in parallel store their results as each ends.
        private readonly SemaphoreSlim _appendGate = new(1, 1);

        /// <summary>The last assistant message the run stored (for its webhook).</summary>
        public ThreadMessage? LastAssistantMessage { get; private set; }

        public async Task AppendMessagesAsync(IReadOnlyList<ThreadMessage> messages, CancellationToken cancellationToken)
        {
            await _appendGate.WaitAsync(cancellationToken);
            try
            {
                await AppendNumberedAsync(messages, cancellationToken);
            }
            finally
            {
                _appendGate.Release();
            }
        }

        private async Task AppendNumberedAsync(IReadOnlyList<ThreadMessage> messages, CancellationToken cancellationToken)
        {
            var first = grain.MessageCount + 1;
            var numbered = messages.Select((m, i) => m with { Ordinal = first + i }).ToList();
            LastAssistantMessage = numbered.LastOrDefault(m => m.Role == MessageRoles.Assistant) ?? LastAssistantMessage;
            var now = grain.Now();
            await grain.CommitAsync(
                s => s with { MessageCount = s.MessageCount + numbered.Count, UpdatedAt = now },
                numbered,
                [],
                cancellationToken);
        }
    }

    private sealed class ActiveRun(RunRecord record, string model)
    {
        public string Model { get; } = model;

        private readonly CancellationTokenSource _cancellation = new();

        public RunRecord Record { get; } = record;
        public string RunId => Record.Id;
        public CancellationToken Token => _cancellation.Token;
        public RunError? InterruptedBy { get; private set; }
        public Task Completion { get; set; } = Task.CompletedTask;

        private readonly Dictionary<string, TaskCompletionSource<string>> _toolOutputs = new(StringComparer.Ordinal);

        /// <summary>A client tool call the run now waits for.</summary>
        public Task<string> AwaitToolOutput(string callId)
        {
            var output = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _toolOutputs[callId] = output;
            return output.Task;
        }

        /// <summary>The submitted calls the run does not wait for (unknown, or answered already).</summary>
        public List<string> NotAwaited(IEnumerable<string> callIds) =>
            [.. callIds.Where(id => !_toolOutputs.TryGetValue(id, out var output) || output.Task.IsCompleted)];

        /// <summary>Hands outputs to the calls that wait for them.</summary>
        public void Submit(IEnumerable<ToolOutput> outputs)
        {
            foreach (var output in outputs)
            {
                _toolOutputs[output.ToolCallId].TrySetResult(output.Output);
            }
        }

        /// <summary>Why a cancel came (the <c>run.cancelled</c> reason).</summary>
        public string CancelReason { get; private set; } = "cancelled by request";

        public void Cancel(string reason)
        {
            if (!_cancellation.IsCancellationRequested)
            {
                CancelReason = reason;
            }

            _cancellation.Cancel();
        }

        public void Interrupt(RunError reason)
        {
            InterruptedBy ??= reason;
            _cancellation.Cancel();
        }
    }
}
