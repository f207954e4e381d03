
namespace Conversations.Silo;

/// <summary>Log messages of the run queue (event ids 3000–3099).</summary>
internal static partial class Log
{
    public const int RunTakenId = 3000;
    public const int RunRetakenId = 3001;
    public const int RunDoneId = 3002;
    public const int RunPutBackId = 3003;
    public const int RunFailedId = 3004;
    public const int RunResultNotStoredId = 3005;
    public const int RunOutcomeNotStoredId = 3006;
    public const int RunQueueScanFailedId = 3007;
    public const int ListenerFailedId = 3008;

    [LoggerMessage(RunTakenId, LogLevel.Debug, "Took run {RunId} of thread {ThreadId} from the queue")]
    public static partial void RunTaken(ILogger logger, string threadId, string runId);

    [LoggerMessage(RunRetakenId, LogLevel.Warning, "Took run {RunId} of thread {ThreadId} again (attempt {Attempt}): {PreviousTaker} did not finish it in time")]
    public static partial void RunRetaken(ILogger logger, string threadId, string runId, int attempt, string previousTaker);

    [LoggerMessage(RunDoneId, LogLevel.Debug, "Run {RunId} of thread {ThreadId} answered; result stored")]
    public static partial void RunDone(ILogger logger, string threadId, string runId);

    [LoggerMessage(RunPutBackId, LogLevel.Information, "Run {RunId} of thread {ThreadId} put back in the queue: {Reason}")]
    public static partial void RunPutBack(ILogger logger, string threadId, string runId, string reason);

    [LoggerMessage(RunFailedId, LogLevel.Error, "Run {RunId} of thread {ThreadId} failed on this silo; it will be taken again after {TakenTimeout}")]
    public static partial void RunFailed(ILogger logger, Exception exception, string threadId, string runId, TimeSpan takenTimeout);

    [LoggerMessage(RunResultNotStoredId, LogLevel.Information, "The result of run {RunId} of thread {ThreadId} was not stored: the request had already ended")]
    public static partial void RunResultNotStored(ILogger logger, string threadId, string runId);

    [LoggerMessage(RunOutcomeNotStoredId, LogLevel.Error, "Storing the outcome of run {RunId} of thread {ThreadId} failed; it will be taken again after {TakenTimeout}")]
    public static partial void RunOutcomeNotStored(ILogger logger, Exception exception, string threadId, string runId, TimeSpan takenTimeout);

    [LoggerMessage(RunQueueScanFailedId, LogLevel.Error, "Silo {SiloId} failed to take runs from the queue; retrying")]
    public static partial void RunQueueScanFailed(ILogger logger, Exception exception, string siloId);

    [LoggerMessage(ListenerFailedId, LogLevel.Warning, "Listening on channel {Channel} failed; reconnecting in {Delay}")]
    public static partial void ListenerFailed(ILogger logger, Exception exception, string channel, TimeSpan delay);
}
