namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// The embedded server's claim on its SQLite file: an exclusive lock on <c>{file}.lock</c>, held for the process's
/// life. Two embedded servers on one file would each run its own silo, each believe it owns every thread, and write
/// runs over each other; the second refuses to start instead, with a message naming the file. The operating system
/// drops the lock when the process ends, however it ends.
/// </summary>
public sealed class SqliteFileLock : IDisposable
{
    private readonly FileStream _lock;

    private SqliteFileLock(FileStream stream) => _lock = stream;

    /// <summary>Takes the lock of <paramref name="databasePath"/>, or throws naming the file when another process holds it.</summary>
    public static SqliteFileLock Acquire(string databasePath)
    {
        var lockPath = databasePath + ".lock";
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        try
        {
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            return new SqliteFileLock(stream);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException(
                $"Another Conversations server is using the database file '{databasePath}' (it holds '{lockPath}'). " +
                "Stop that server, or give this one a file of its own with Storage:SqlitePath (or run both as a cluster on PostgreSQL).",
                ex);
        }
    }

    public void Dispose() => _lock.Dispose();
}
