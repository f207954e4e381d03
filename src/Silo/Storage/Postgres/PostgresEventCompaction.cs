using Conversations.Silo.Retention;
using Npgsql;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IEventLogCompaction"/> over PostgreSQL: one statement deleting up to a batch of <c>events</c> rows older
/// than the cutoff (found by <c>events_created_at</c>), skipping threads with a run still marked running (the
/// partial index <c>runs_running</c>).
/// </summary>
public sealed class PostgresEventCompaction(PostgresDatabase database) : IEventLogCompaction
{
    /// <inheritdoc />
    public Task<int> CompactAsync(DateTimeOffset cutoff, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        return database.RunAsync("compact the event log", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Compact, connection);
            command.Parameters.Add(new NpgsqlParameter<DateTime>("cutoff", PostgresValues.Time(cutoff)));
            command.Parameters.Add(new NpgsqlParameter<int>("batch", batchSize));
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }, cancellationToken);
    }

    // The status test is spelled as in runs_running (migration 10), so the planner can use it.
    private const string Compact = """
        DELETE FROM events
        WHERE (thread_id, sequence) IN (
            SELECT e.thread_id, e.sequence FROM events AS e
            WHERE e.created_at < @cutoff
              AND NOT EXISTS (SELECT FROM runs AS r WHERE r.thread_id = e.thread_id AND (r.body ->> 'status') = 'running')
            LIMIT @batch);
        """;
}
