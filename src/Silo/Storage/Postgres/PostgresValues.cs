using System.Text.Json;
using Conversations.Grains.Abstractions.Serialization;
using Npgsql;
using NpgsqlTypes;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>How values are written to and read from columns: JSON through <see cref="ContractJson"/>, times as UTC <c>timestamptz</c>.</summary>
internal static class PostgresValues
{
    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, ContractJson.Options);

    public static T FromJson<T>(string json, string what) =>
        JsonSerializer.Deserialize<T>(json, ContractJson.Options)
        ?? throw new InvalidDataException($"The stored JSON of {what} is null.");

    /// <summary>Npgsql writes only UTC values to <c>timestamptz</c>.</summary>
    public static DateTime Time(DateTimeOffset value) => value.UtcDateTime;

    public static NpgsqlParameter Text(string name, string value) => new NpgsqlParameter<string>(name, value);

    public static NpgsqlParameter Jsonb(string name, string json) => new(name, NpgsqlDbType.Jsonb) { Value = json };

    public static NpgsqlParameter Array<T>(string name, NpgsqlDbType elementType, T[] values) =>
        new(name, NpgsqlDbType.Array | elementType) { Value = values };
}
