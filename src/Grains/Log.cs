using Microsoft.Extensions.Logging;

namespace Conversations.Grains;

/// <summary>Log messages of the grains. Every line about a thread carries ThreadId and RunId.</summary>
internal static partial class Log
{
    public const int RunStartedId = 1000;
    public const int RunCompletedId = 1001;
    public const int RunFailedId = 1002;
    public const int RunCancelledId = 1003;
    public const int RunCrashedId = 1004;
    public const int RunEndNotStoredId = 1005;
    public const int RunNotEndedOnDeactivationId = 1006;
    public const int StreamNotFlushedOnDeactivationId = 1007;
    public const int EventsNotWrittenId = 1008;
    public const int ReminderNotRemovedId = 1009;
    public const int ConcurrentWriterId = 1010;
    public const int DurableEventDeliveredId = 1011;
    public const int ReminderNotRegisteredId = 1012;
    public const int ActivityNotReportedId = 1013;
    public const int UncommittedRowsRemovedId = 1014;
    public const int RunQueuedId = 1015;
    public const int RunSteeringId = 1016;
    public const int RunRolledBackId = 1017;
    public const int QueuedRunNotStartedId = 1018;
    public const int RunResumedId = 1019;
    public const int RunNotResumedId = 1020;
    public const int RunEndStoredLateId = 1021;
    public const int RunRequiresActionId = 1022;
    public const int ModelCallFailedId = 1100;
    public const int ThreadDeletedId = 1030;
    public const int ThreadNotIndexedId = 1031;

    /// <summary>The scope of everything a run logs: its thread, its run and the silo that runs it.</summary>
    public static readonly Func<ILogger, string, string, string, IDisposable?> RunScope =
        LoggerMessage.DefineScope<string, string, string>("ThreadId:{ThreadId} RunId:{RunId} SiloId:{SiloId}");

    [LoggerMessage(RunStartedId, LogLevel.Information, "Run {RunId} started on thread {ThreadId} with agent {Agent} and model {Model}")]
    public static partial void RunStarted(ILogger logger, string threadId, string runId, string agent, string model);

    [LoggerMessage(RunCompletedId, LogLevel.Information, "Run {RunId} on thread {ThreadId} completed: {StopReason}")]
    public static partial void RunCompleted(ILogger logger, string threadId, string runId, string stopReason);

    [LoggerMessage(RunFailedId, LogLevel.Warning, "Run {RunId} on thread {ThreadId} failed: {ErrorCode} {ErrorMessage}")]
    public static partial void RunFailed(ILogger logger, string threadId, string runId, string errorCode, string errorMessage);

    [LoggerMessage(RunCancelledId, LogLevel.Information, "Run {RunId} on thread {ThreadId} was cancelled")]
    public static partial void RunCancelled(ILogger logger, string threadId, string runId);

    [LoggerMessage(RunCrashedId, LogLevel.Error, "Run {RunId} on thread {ThreadId} failed with an unexpected error")]
    public static partial void RunCrashed(ILogger logger, Exception exception, string threadId, string runId);

    [LoggerMessage(RunEndNotStoredId, LogLevel.Error, "The end of run {RunId} on thread {ThreadId} could not be stored")]
    public static partial void RunEndNotStored(ILogger logger, Exception exception, string threadId, string runId);

    [LoggerMessage(RunNotEndedOnDeactivationId, LogLevel.Warning, "Run {RunId} on thread {ThreadId} did not end before deactivation finished")]
    public static partial void RunNotEndedOnDeactivation(ILogger logger, string threadId, string runId);

    [LoggerMessage(StreamNotFlushedOnDeactivationId, LogLevel.Warning, "The events of thread {ThreadId} were not all written before deactivation finished")]
    public static partial void StreamNotFlushedOnDeactivation(ILogger logger, Exception exception, string threadId);

    [LoggerMessage(EventsNotWrittenId, LogLevel.Warning, "{Count} events of thread {ThreadId} could not be written to the event log (attempt {Attempt}); retrying")]
    public static partial void EventsNotWritten(ILogger logger, Exception exception, string threadId, int count, int attempt);

    [LoggerMessage(ReminderNotRemovedId, LogLevel.Warning, "The active-run reminder of thread {ThreadId} could not be removed after run {RunId} ended")]
    public static partial void ReminderNotRemoved(ILogger logger, Exception exception, string threadId, string runId);

    [LoggerMessage(ConcurrentWriterId, LogLevel.Warning, "Thread {ThreadId} was written by another activation; this one deactivates without writing")]
    public static partial void ConcurrentWriter(ILogger logger, Exception exception, string threadId);

    [LoggerMessage(DurableEventDeliveredId, LogLevel.Warning, "Event {Sequence} of thread {ThreadId} was delivered before the event log had it: the log did not answer in time")]
    public static partial void DurableEventDelivered(ILogger logger, string threadId, long sequence);

    [LoggerMessage(ReminderNotRegisteredId, LogLevel.Warning, "The active-run reminder of thread {ThreadId} could not be registered for run {RunId}; the run goes on without it")]
    public static partial void ReminderNotRegistered(ILogger logger, Exception exception, string threadId, string runId);

    [LoggerMessage(ActivityNotReportedId, LogLevel.Warning, "Run {RunId} on thread {ThreadId} could not be reported to the monitor ({Kind})")]
    public static partial void ActivityNotReported(ILogger logger, Exception exception, string threadId, string runId, string kind);

    [LoggerMessage(UncommittedRowsRemovedId, LogLevel.Warning, "Thread {ThreadId}: removed {Messages} messages and {Runs} runs a failed write had stored without its state")]
    public static partial void UncommittedRowsRemoved(ILogger logger, string threadId, int messages, int runs);

    [LoggerMessage(RunQueuedId, LogLevel.Information, "Run {RunId} queued on thread {ThreadId} at position {Position}")]
    public static partial void RunQueued(ILogger logger, string threadId, string runId, int position);

    [LoggerMessage(RunSteeringId, LogLevel.Information, "Message {MessageId} waits to steer run {RunId} on thread {ThreadId}")]
    public static partial void RunSteering(ILogger logger, string threadId, string runId, string messageId);

    [LoggerMessage(RunRolledBackId, LogLevel.Information, "Run {RunId} on thread {ThreadId} was rolled back: {Messages} messages removed")]
    public static partial void RunRolledBack(ILogger logger, string threadId, string runId, int messages);

    [LoggerMessage(QueuedRunNotStartedId, LogLevel.Warning, "The next queued run of thread {ThreadId} could not start; it stays queued")]
    public static partial void QueuedRunNotStarted(ILogger logger, Exception exception, string threadId);

    [LoggerMessage(RunResumedId, LogLevel.Warning, "Run {RunId} on thread {ThreadId} resumed after its activation was lost (attempt {Attempt})")]
    public static partial void RunResumed(ILogger logger, string threadId, string runId, int attempt);

    [LoggerMessage(RunNotResumedId, LogLevel.Warning, "Run {RunId} on thread {ThreadId} could not be resumed now; its reminder retries")]
    public static partial void RunNotResumed(ILogger logger, Exception exception, string threadId, string runId);

    [LoggerMessage(RunEndStoredLateId, LogLevel.Information, "The end of run {RunId} on thread {ThreadId} ({Status}) is stored now")]
    public static partial void RunEndStoredLate(ILogger logger, string threadId, string runId, string status);
    [LoggerMessage(ModelCallFailedId, LogLevel.Warning,
        "Model {Model} at {Host} failed for run {RunId} on thread {ThreadId}: {ErrorCode}, HTTP status {HttpStatus}, error {Error}; cause: {Cause}")]
    public static partial void ModelCallFailed(
        ILogger logger, string? threadId, string? runId, string model, string host, string errorCode, string httpStatus, string error, string cause);

    [LoggerMessage(RunRequiresActionId, LogLevel.Information, "Run {RunId} on thread {ThreadId} waits for the output of {Calls} client tool calls")]
    public static partial void RunRequiresAction(ILogger logger, string threadId, string runId, int calls);

    [LoggerMessage(ThreadDeletedId, LogLevel.Information, "Thread {ThreadId} was deleted: its state, messages, runs and events are erased")]
    public static partial void ThreadDeleted(ILogger logger, string threadId);

    [LoggerMessage(ThreadNotIndexedId, LogLevel.Warning, "The index row of thread {ThreadId} could not be written; the next change or activation writes it")]
    public static partial void ThreadNotIndexed(ILogger logger, Exception exception, string threadId);
}
