using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Threads;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// <see cref="IEventLog"/> over SQLite: one row of <c>events</c> per (thread, sequence), the body being the event
/// serialized through <see cref="ThreadEvent"/> (so it carries its <c>type</c> discriminator).
/// Thread-safe; needs <see cref="SqliteDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class SqliteEventLog(SqliteDatabase database) : IEventLog
{
    private readonly SqliteDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <summary>
    /// How many rows <see cref="ReadAsync"/> reads per query. Between pages it holds no connection, so a slow
    /// consumer never pins a read snapshot (which would stop WAL checkpoints and let the WAL file grow).
    /// </summary>
    internal int PageSize { get; init; } = 256;

    /// <inheritdoc />
    public async Task AppendAsync(IReadOnlyList<ThreadEvent> events, CancellationToken cancellationToken = default)
    {
        StorageArguments.ValidateEvents(events);

        if (events.Count == 0)
        {
            return;
        }

        await _database.WriteAsync((connection, transaction) =>
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Sql.Append;
            var threadId = command.Parameters.Add("$thread_id", SqliteType.Text);
            var sequence = command.Parameters.Add("$sequence", SqliteType.Integer);
            var type = command.Parameters.Add("$type", SqliteType.Text);
            var body = command.Parameters.Add("$body", SqliteType.Text);
            var createdAt = command.Parameters.Add("$created_at", SqliteType.Text);
            foreach (var threadEvent in events)
            {
                threadId.Value = threadEvent.ThreadId;
                sequence.Value = threadEvent.Sequence;
                type.Value = threadEvent.Type;
                // Through the base type, so the JSON carries the "type" discriminator ReadAsync needs.
                body.Value = SqliteValues.ToJson<ThreadEvent>(threadEvent);
                createdAt.Value = SqliteValues.Time(threadEvent.CreatedAt);
                command.ExecuteNonQuery();
            }

            return events.Count;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Reads in pages of <see cref="PageSize"/> rows, each page one query through a data reader; events appended
    /// while the enumeration runs are included if they fall in the range. An empty range
    /// (<paramref name="toSequence"/> not above <paramref name="afterSequence"/>) yields nothing.
    /// </remarks>
    public IAsyncEnumerable<ThreadEvent> ReadAsync(
        string threadId, long afterSequence, long toSequence = long.MaxValue, CancellationToken cancellationToken = default)
    {
        // Validated here, not in the iterator, so a bad argument throws at the call rather than at the first MoveNext.
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        return ReadPagesAsync(threadId, afterSequence, toSequence, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<long> GetLastSequenceAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.LastSequence;
        command.Parameters.AddWithValue("$thread_id", threadId);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long last ? last : 0;
    }

    private IAsyncEnumerable<ThreadEvent> ReadPagesAsync(string threadId, long afterSequence, long toSequence, CancellationToken cancellationToken) =>
        EventPages.ReadAsync((after, page, token) => ReadPageAsync(threadId, after, toSequence, page, token), afterSequence, toSequence, PageSize, cancellationToken);

    private async Task ReadPageAsync(string threadId, long after, long toSequence, List<ThreadEvent> page, CancellationToken cancellationToken)
    {
        using (var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
        using (var command = connection.CreateCommand())
        {
            command.CommandText = Sql.Read;
            command.Parameters.AddWithValue("$thread_id", threadId);
            command.Parameters.AddWithValue("$after_sequence", after); // the last sequence of the previous page
            command.Parameters.AddWithValue("$to_sequence", toSequence);
            command.Parameters.AddWithValue("$limit", PageSize);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                page.Add(SqliteValues.FromJson<ThreadEvent>(reader.GetString(0), $"event {reader.GetInt64(1)} of thread '{threadId}'"));
            }
        }
    }

    /// <summary>The event log's SQL, all of it.</summary>
    private static class Sql
    {
        // ON CONFLICT on the key rather than INSERT OR IGNORE: only a repeated (thread, sequence) is ignored, any
        // other constraint failure still throws.
        public const string Append = """
            INSERT INTO events (thread_id, sequence, type, body, created_at)
            VALUES ($thread_id, $sequence, $type, $body, $created_at)
            ON CONFLICT (thread_id, sequence) DO NOTHING;
            """;

        public const string Read = """
            SELECT body, sequence FROM events
            WHERE thread_id = $thread_id AND sequence > $after_sequence AND sequence <= $to_sequence
            ORDER BY sequence
            LIMIT $limit;
            """;

        public const string LastSequence = "SELECT MAX(sequence) FROM events WHERE thread_id = $thread_id;";
    }
}
