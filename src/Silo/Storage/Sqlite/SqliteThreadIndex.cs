using System.Globalization;
using System.Text;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Threads;
using Microsoft.Data.Sqlite;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// <see cref="IThreadIndex"/> over SQLite: one row of <c>thread_index</c> per thread, metadata as JSON text, times
/// as UTC ISO-8601 text (which sorts in time order). Thread-safe; needs <see cref="SqliteDatabase.MigrateAsync"/>.
/// </summary>
public sealed class SqliteThreadIndex(SqliteDatabase database) : IThreadIndex
{
    private readonly SqliteDatabase _database = database ?? throw new ArgumentNullException(nameof(database));

    /// <inheritdoc />
    public async Task UpsertAsync(ThreadSummary thread, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(thread);
        ArgumentException.ThrowIfNullOrEmpty(thread.Id);
        await WriteAsync((connection, transaction) =>
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Sql.Upsert;
            command.Parameters.AddWithValue("$id", thread.Id);
            command.Parameters.AddWithValue("$owner", (object?)thread.Owner ?? DBNull.Value);
            command.Parameters.AddWithValue("$created_at", SqliteValues.Time(thread.CreatedAt));
            command.Parameters.AddWithValue("$updated_at", SqliteValues.Time(thread.UpdatedAt));
            command.Parameters.AddWithValue("$metadata", SqliteValues.ToJson(thread.Metadata));
            command.Parameters.AddWithValue("$title", (object?)thread.Title ?? DBNull.Value);
            command.Parameters.AddWithValue("$preview", (object?)thread.LastMessagePreview ?? DBNull.Value);
            command.Parameters.AddWithValue("$message_count", thread.MessageCount);
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ThreadSummary?> GetAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        var rows = await ReadAsync($"{Sql.Select} WHERE id = $id;", command => command.Parameters.AddWithValue("$id", threadId), cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ThreadSummary>> ListAsync(ThreadListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(query.Limit);
        ArgumentOutOfRangeException.ThrowIfNegative(query.Offset);
        var sql = new StringBuilder(Sql.Select).Append(" WHERE 1 = 1");
        if (!query.AnyOwner)
        {
            sql.Append(" AND owner IS $owner");
        }

        if (query.After is not null)
        {
            sql.Append(" AND (updated_at < $after_updated OR (updated_at = $after_updated AND id < $after_id))");
        }

        var pairs = query.Metadata.ToList();
        for (var i = 0; i < pairs.Count; i++)
        {
            // json_each, not a JSON path: a key may hold any character.
            sql.Append(CultureInfo.InvariantCulture, $" AND EXISTS (SELECT 1 FROM json_each(thread_index.metadata) AS m WHERE m.key = $key{i} AND m.value = $value{i})");
        }

        sql.Append(" ORDER BY updated_at DESC, id DESC LIMIT $limit OFFSET $offset;");
        return ReadAsync(sql.ToString(), command =>
        {
            command.Parameters.AddWithValue("$owner", (object?)query.Owner ?? DBNull.Value);
            if (query.After is { } after)
            {
                command.Parameters.AddWithValue("$after_updated", SqliteValues.Time(after.UpdatedAt));
                command.Parameters.AddWithValue("$after_id", after.Id);
            }

            for (var i = 0; i < pairs.Count; i++)
            {
                command.Parameters.AddWithValue(string.Create(CultureInfo.InvariantCulture, $"$key{i}"), pairs[i].Key);
                command.Parameters.AddWithValue(string.Create(CultureInfo.InvariantCulture, $"$value{i}"), pairs[i].Value);
            }

            command.Parameters.AddWithValue("$limit", query.Limit);
            command.Parameters.AddWithValue("$offset", query.Offset);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task EraseAsync(string threadId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(threadId);
        await WriteAsync((connection, transaction) =>
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Sql.Erase;
            command.Parameters.AddWithValue("$id", threadId);
            return command.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<ThreadSummary>> ReadAsync(string sql, Action<SqliteCommand> bind, CancellationToken cancellationToken) =>
        await RunAsync<IReadOnlyList<ThreadSummary>>(async connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            bind(command);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var rows = new List<ThreadSummary>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var id = reader.GetString(0);
                rows.Add(new ThreadSummary(
                    id,
                    SqliteValues.ParseTime(reader.GetString(2)),
                    SqliteValues.ParseTime(reader.GetString(3)),
                    SqliteValues.FromJson<Dictionary<string, string>>(reader.GetString(4), $"the metadata of thread '{id}'"),
                    reader.GetInt32(7),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6))
                {
                    Owner = reader.IsDBNull(1) ? null : reader.GetString(1),
                });
            }

            return rows;
        }, cancellationToken).ConfigureAwait(false);

    private async Task<T> RunAsync<T>(Func<SqliteConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await work(connection).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw new StorageUnavailableException($"The database '{_database.Path}' failed: {ex.Message}", ex);
        }
    }

    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> write, CancellationToken cancellationToken)
    {
        try
        {
            return await _database.WriteAsync(write, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw new StorageUnavailableException($"The database '{_database.Path}' failed: {ex.Message}", ex);
        }
    }

    /// <summary>The thread index's SQL, all of it.</summary>
    private static class Sql
    {
        public const string Upsert = """
            INSERT INTO thread_index (id, owner, created_at, updated_at, metadata, title, preview, message_count)
            VALUES ($id, $owner, $created_at, $updated_at, $metadata, $title, $preview, $message_count)
            ON CONFLICT (id) DO UPDATE SET
                owner = excluded.owner, created_at = excluded.created_at, updated_at = excluded.updated_at,
                metadata = excluded.metadata, title = excluded.title, preview = excluded.preview,
                message_count = excluded.message_count;
            """;

        public const string Select = "SELECT id, owner, created_at, updated_at, metadata, title, preview, message_count FROM thread_index";

        public const string Erase = """
            DELETE FROM events WHERE thread_id = $id;
            DELETE FROM messages WHERE thread_id = $id;
            DELETE FROM runs WHERE thread_id = $id;
            DELETE FROM thread_index WHERE id = $id;
            """;
    }
}
