using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Retention;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// <see cref="IEventLogCompaction"/> over SQLite: one <c>DELETE</c> of up to a batch of <c>events</c> rows older than
/// the cutoff (found by <c>events_created_at</c>), skipping threads with a run still marked running.
/// </summary>
public sealed class SqliteEventCompaction(SqliteDatabase database) : IEventLogCompaction
{
    /// <inheritdoc />
    public async Task<int> CompactAsync(DateTimeOffset cutoff, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        try
        {
            return await database.WriteAsync((connection, transaction) =>
            {
                using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = Compact;
                command.Parameters.AddWithValue("$cutoff", SqliteValues.Time(cutoff));
                command.Parameters.AddWithValue("$batch", batchSize);
                return command.ExecuteNonQuery();
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw new StorageUnavailableException($"The database '{database.Path}' failed: {ex.Message}", ex);
        }
    }

    private const string Compact = """
        DELETE FROM events WHERE rowid IN (
            SELECT e.rowid FROM events AS e
            WHERE e.created_at < $cutoff
              AND NOT EXISTS (SELECT 1 FROM runs AS r WHERE r.thread_id = e.thread_id AND r.status = 'running')
            LIMIT $batch);
        """;
}
