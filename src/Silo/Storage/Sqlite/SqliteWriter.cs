using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// Every write to one SQLite file, one after another on one connection, many per transaction (group commit).
/// </summary>
/// <remarks>
/// SQLite lets one writer in at a time, and Microsoft.Data.Sqlite does its I/O synchronously: when each grain wrote on
/// its own connection, hundreds of live threads meant hundreds of small transactions queueing for the write lock, each
/// waiting in SQLite's busy handler on a blocked thread-pool thread. Here callers queue their write and await it; one
/// drain at a time (a thread-pool work item, only while there is work) takes what is queued, runs each write in a
/// savepoint of one <c>BEGIN IMMEDIATE</c> transaction and commits once. A write that throws is rolled back to its
/// savepoint and fails alone, with its own exception; the others commit. A commit that fails fails every write of it.
/// </remarks>
internal sealed class SqliteWriter(SqliteDatabase database)
{
    /// <summary>Writes per transaction at most: bounds how long one commit holds the lock and how much one failure undoes.</summary>
    internal const int MaxBatch = 256;

    private readonly ConcurrentQueue<Write> _queue = new();
    private int _draining;

    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(cancellationToken);
        }

        var queued = new Write<T>(write, cancellationToken);
        _queue.Enqueue(queued);
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            // Not flowing the caller's ExecutionContext: the drain serves every caller, not the first one's trace.
            ThreadPool.UnsafeQueueUserWorkItem(static writer => writer.Drain(), this, preferLocal: false);
        }

        return queued.Task;
    }

    private void Drain()
    {
        while (true)
        {
            try
            {
                DrainQueued();
            }
            finally
            {
                Volatile.Write(ref _draining, 0);
            }

            // A write queued after the last look but before the flag was cleared found the flag set and left it to us.
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _draining, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void DrainQueued()
    {
        var batch = new List<Write>(MaxBatch);
        SqliteConnection? connection = null;
        try
        {
            while (Take(batch))
            {
                try
                {
                    connection ??= database.OpenConnection();
                    Commit(connection, batch);
                }
                catch (Exception ex)
                {
                    // The connection's state is unknown (a failed BEGIN or COMMIT): the next batch opens another.
                    foreach (var write in batch)
                    {
                        write.Fail(ex);
                    }

                    connection?.Dispose();
                    connection = null;
                }

                batch.Clear();
            }
        }
        finally
        {
            // Back to the pool while idle, so SqliteDatabase.Dispose (ClearPool) can close the file.
            connection?.Dispose();
        }
    }

    private bool Take(List<Write> batch)
    {
        while (batch.Count < MaxBatch && _queue.TryDequeue(out var write))
        {
            if (write.IsCancellationRequested)
            {
                write.Cancel();
            }
            else
            {
                batch.Add(write);
            }
        }

        return batch.Count > 0;
    }

    private static void Commit(SqliteConnection connection, List<Write> batch)
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        var done = new List<Write>(batch.Count);
        foreach (var write in batch)
        {
            transaction.Save("w");
            try
            {
                write.Run(connection, transaction);
                transaction.Release("w");
                done.Add(write);
            }
            catch (Exception ex)
            {
                // Undoes this write's statements only; if SQLite rolled the whole transaction back (an I/O error),
                // this throws, and the batch fails as a whole in DrainQueued.
                transaction.Rollback("w");
                transaction.Release("w");
                write.Fail(ex);
            }
        }

        transaction.Commit();
        foreach (var write in done)
        {
            write.Succeed();
        }
    }

    private abstract class Write(CancellationToken cancellationToken)
    {
        public bool IsCancellationRequested => cancellationToken.IsCancellationRequested;

        public abstract void Run(SqliteConnection connection, SqliteTransaction transaction);

        public abstract void Succeed();

        public abstract void Fail(Exception exception);

        public abstract void Cancel();

        protected CancellationToken CancellationToken => cancellationToken;
    }

    private sealed class Write<T>(Func<SqliteConnection, SqliteTransaction, T> write, CancellationToken cancellationToken) : Write(cancellationToken)
    {
        // Continuations run elsewhere, never on the drain (a grain's continuation goes back to its own scheduler anyway).
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _completion.Task;

        public override void Run(SqliteConnection connection, SqliteTransaction transaction) => _result = write(connection, transaction);

        public override void Succeed() => _completion.TrySetResult(_result!);

        public override void Fail(Exception exception) => _completion.TrySetException(exception);

        public override void Cancel() => _completion.TrySetCanceled(CancellationToken);
    }
}
