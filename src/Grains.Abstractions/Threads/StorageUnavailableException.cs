namespace Conversations.Grains.Abstractions.Threads;

/// <summary>
/// The storage behind the grains (the database) could not be reached or failed. Raised by grains in place of a
/// driver's own exception, which must never cross the grain boundary: a client could not deserialize it. Nothing was
/// half-written (every write is one transaction); retry later.
/// </summary>
[GenerateSerializer, Alias("conv.StorageUnavailableException")]
public sealed class StorageUnavailableException : Exception
{
    public StorageUnavailableException()
        : this("The storage is unavailable.")
    {
    }

    public StorageUnavailableException(string message)
        : base(message)
    {
    }

    public StorageUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
