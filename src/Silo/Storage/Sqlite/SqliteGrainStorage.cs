using System.Globalization;
using Microsoft.Data.Sqlite;
using Orleans.Storage;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>
/// Orleans grain storage on the embedded SQLite file (Orleans' ADO.NET provider has no SQLite scripts): one row of
/// <c>grain_state</c> per (state name, grain type, grain key), the state as <c>ContractJson</c> text and an ETag that
/// is the row's write count. A write names the ETag it read; when the stored one differs it fails with
/// <see cref="InconsistentStateException"/> and changes nothing, as Orleans' providers do.
/// </summary>
public sealed class SqliteGrainStorage(SqliteDatabase database, TimeProvider time) : IGrainStorage
{
    private const int ConstraintViolation = 19; // SQLITE_CONSTRAINT

    /// <inheritdoc />
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        using var connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = Sql.Read;
        Bind(command, stateName, grainId);
        using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        if (await reader.ReadAsync().ConfigureAwait(false))
        {
            grainState.ETag = reader.GetString(0);
            grainState.State = SqliteValues.FromJson<T>(reader.GetString(1), $"the {stateName} state of {grainId}");
            grainState.RecordExists = true;
        }
        else
        {
            grainState.ETag = null;
            grainState.State = Activator.CreateInstance<T>();
            grainState.RecordExists = false;
        }
    }

    /// <inheritdoc />
    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var expected = grainState.ETag;
        var next = expected is null ? 1 : long.Parse(expected, CultureInfo.InvariantCulture) + 1;
        var payload = SqliteValues.ToJson(grainState.State);
        int rows;
        try
        {
            rows = await database.WriteAsync((connection, transaction) =>
            {
                using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = expected is null ? Sql.Insert : Sql.Update;
                Bind(command, stateName, grainId);
                command.Parameters.AddWithValue("$etag", next.ToString(CultureInfo.InvariantCulture));
                command.Parameters.AddWithValue("$expected_etag", expected ?? string.Empty);
                command.Parameters.AddWithValue("$payload", payload);
                command.Parameters.AddWithValue("$updated_at", SqliteValues.Time(time.GetUtcNow()));
                return command.ExecuteNonQuery();
            }).ConfigureAwait(false);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == ConstraintViolation && expected is null)
        {
            throw new InconsistentStateException($"The {stateName} state of {grainId} was created by another writer.", "(none)", expected ?? "(none)", ex);
        }

        if (rows != 1)
        {
            throw new InconsistentStateException($"The {stateName} state of {grainId} was written by another writer.", "(unknown)", expected ?? "(none)");
        }

        grainState.ETag = next.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    /// <inheritdoc />
    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (grainState.ETag is { } expected)
        {
            var rows = await database.WriteAsync((connection, transaction) =>
            {
                using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = Sql.Delete;
                Bind(command, stateName, grainId);
                command.Parameters.AddWithValue("$expected_etag", expected);
                return command.ExecuteNonQuery();
            }).ConfigureAwait(false);
            if (rows != 1)
            {
                throw new InconsistentStateException($"The {stateName} state of {grainId} was written by another writer.", "(unknown)", expected);
            }
        }

        grainState.ETag = null;
        grainState.State = Activator.CreateInstance<T>();
        grainState.RecordExists = false;
    }

    private static void Bind(SqliteCommand command, string stateName, GrainId grainId)
    {
        command.Parameters.AddWithValue("$state_name", stateName);
        command.Parameters.AddWithValue("$grain_type", grainId.Type.ToString());
        command.Parameters.AddWithValue("$grain_key", grainId.Key.ToString());
    }

    /// <summary>The grain storage's SQL, all of it.</summary>
    private static class Sql
    {
        private const string Key = "state_name = $state_name AND grain_type = $grain_type AND grain_key = $grain_key";

        public const string Read = $"SELECT etag, payload FROM grain_state WHERE {Key};";

        public const string Insert = """
            INSERT INTO grain_state (state_name, grain_type, grain_key, etag, payload, updated_at)
            VALUES ($state_name, $grain_type, $grain_key, $etag, $payload, $updated_at);
            """;

        public const string Update = $"UPDATE grain_state SET etag = $etag, payload = $payload, updated_at = $updated_at WHERE {Key} AND etag = $expected_etag;";

        public const string Delete = $"DELETE FROM grain_state WHERE {Key} AND etag = $expected_etag;";
    }
}
