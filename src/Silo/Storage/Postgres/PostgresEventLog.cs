using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Npgsql;
using NpgsqlTypes;
using static Conversations.Silo.Storage.Postgres.PostgresValues;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// <see cref="IEventLog"/> over PostgreSQL: one row of <c>events</c> per (thread, sequence), the body being the event
/// serialized through <see cref="ThreadEvent"/> (so it carries its <c>type</c> discriminator) and kept verbatim as
/// <c>json</c>. A batch is one <c>INSERT … SELECT FROM unnest(…)</c> statement: one round trip, atomic. Every
/// database failure is raised as <see cref="StorageUnavailableException"/>.
/// Thread-safe; needs <see cref="PostgresDatabase.MigrateAsync"/> to have run.
/// </summary>
public sealed class PostgresEventLog(PostgresDatabase database) : IEventLog
{
    private readonly PostgresDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <summary>
    /// How many rows <see cref="ReadAsync"/> reads per query. Between pages it holds no connection, so a slow
    /// consumer never pins a pooled connection or an old snapshot.
    /// </summary>
    internal int PageSize { get; init; } = 256;

    /// <inheritdoc />
    /// <remarks>
    /// The events may belong to several threads. Every event needs a thread id and a sequence of 1 or more
    /// (<see cref="ArgumentException"/> otherwise, before anything is written); a sequence repeated within the
    /// batch keeps its first event.
    /// </remarks>
    public async Task AppendAsync(IReadOnlyList<ThreadEvent> events, CancellationToken cancellationToken = default)
    {
        Validate(events);
        if (events.Count == 0)
        {
            return;
        }

        var what = events.Count == 1 ? $"append an event of thread '{events[0].ThreadId}'" : $"append {events.Count} events";
        await _database.RunAsync(what, async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Append, connection);
            command.Parameters.Add(Array("thread_ids", NpgsqlDbType.Text, events.Select(e => e.ThreadId).ToArray()));
            command.Parameters.Add(Array("sequences", NpgsqlDbType.Bigint, events.Select(e => e.Sequence).ToArray()));
            command.Parameters.Add(Array("types", NpgsqlDbType.Text, events.Select(e => e.Type).ToArray()));
            // Through the base type, so the JSON carries the "type" discriminator ReadAsync needs.
            command.Parameters.Add(Array("bodies", NpgsqlDbType.Json, events.Select(ToJson<ThreadEvent>).ToArray()));
            command.Parameters.Add(Array("created_ats", NpgsqlDbType.TimestampTz, events.Select(e => Time(e.CreatedAt)).ToArray()));
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Reads in pages of <see cref="PageSize"/> rows, each page one query; events appended while the enumeration
    /// runs are included if they fall in the range. An empty range (<paramref name="toSequence"/> not above
    /// <paramref name="afterSequence"/>) yields nothing. A page that cannot be read ends the enumeration with
    /// <see cref="StorageUnavailableException"/>.
    /// </remarks>
    public IAsyncEnumerable<ThreadEvent> ReadAsync(
        string threadId, long afterSequence, long toSequence = long.MaxValue, CancellationToken cancellationToken = default)
    {
        // Validated here, not in the iterator, so a bad argument throws at the call rather than at the first MoveNext.
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        return EventPages.ReadAsync(
            (after, page, token) => ReadPageAsync(threadId, after, toSequence, page, token), afterSequence, toSequence, PageSize, cancellationToken);
    }

    /// <inheritdoc />
    public Task<long> GetLastSequenceAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);

        return _database.RunAsync($"read the last event sequence of thread '{threadId}'", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.LastSequence, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) is long last ? last : 0;
        }, cancellationToken);
    }

    private Task ReadPageAsync(string threadId, long after, long toSequence, List<ThreadEvent> page, CancellationToken cancellationToken) =>
        _database.RunAsync($"read the events of thread '{threadId}' after {after}", async (connection, token) =>
        {
            await using var command = new NpgsqlCommand(Sql.Read, connection);
            command.Parameters.Add(Text("thread_id", threadId));
            command.Parameters.Add(new NpgsqlParameter<long>("after_sequence", after)); // the last sequence of the previous page
            command.Parameters.Add(new NpgsqlParameter<long>("to_sequence", toSequence));
            command.Parameters.Add(new NpgsqlParameter<int>("limit", PageSize));
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                page.Add(FromJson<ThreadEvent>(reader.GetString(0), $"event {reader.GetInt64(1)} of thread '{threadId}'"));
            }

            return page.Count;
        }, cancellationToken);

    private static void Validate(IReadOnlyList<ThreadEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var threadEvent in events)
        {
            if (threadEvent is null || string.IsNullOrEmpty(threadEvent.ThreadId) || threadEvent.Sequence < 1)
            {
                throw new ArgumentException("Every event needs a thread id and a sequence of 1 or more.", nameof(events));
            }
        }
    }

    /// <summary>The event log's SQL, all of it.</summary>
    private static class Sql
    {
        // ON CONFLICT on the key: only a repeated (thread, sequence) is ignored, in the table or within the batch.
        public const string Append = """
            INSERT INTO events (thread_id, sequence, type, body, created_at)
            SELECT * FROM unnest(@thread_ids, @sequences, @types, @bodies, @created_ats)
            ON CONFLICT (thread_id, sequence) DO NOTHING;
            """;

        public const string Read = """
            SELECT body::text, sequence FROM events
            WHERE thread_id = @thread_id AND sequence > @after_sequence AND sequence <= @to_sequence
            ORDER BY sequence
            LIMIT @limit;
            """;

        public const string LastSequence = "SELECT MAX(sequence) FROM events WHERE thread_id = @thread_id;";
    }
}
