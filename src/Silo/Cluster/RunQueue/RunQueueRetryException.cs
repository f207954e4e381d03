namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>
/// Thrown by a <see cref="RunQueueWorker"/>'s handler to put the request back in the queue instead of answering it,
/// e.g. when another silo took the thread's lease between the scan and the grain call: the request becomes
/// <c>queued</c> again and the lease holder takes it.
/// </summary>
public sealed class RunQueueRetryException : Exception
{
    public RunQueueRetryException()
        : base("The run request cannot be run on this silo now; put it back in the queue.")
    {
    }

    public RunQueueRetryException(string message)
        : base(message)
    {
    }

    public RunQueueRetryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
