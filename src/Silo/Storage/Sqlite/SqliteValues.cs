using System.Globalization;
using System.Text.Json;
using Conversations.Grains.Abstractions.Serialization;

namespace Conversations.Silo.Storage.Sqlite;

/// <summary>How values are written to and read from columns: JSON through <see cref="ContractJson"/>, times as UTC text.</summary>
internal static class SqliteValues
{
    /// <summary>UTC ISO-8601 with 100 ns precision: sorts as text in time order.</summary>
    public static string Time(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A time written by <see cref="Time"/>.</summary>
    public static DateTimeOffset ParseTime(string value) =>
        DateTimeOffset.ParseExact(value, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, ContractJson.Options);

    public static T FromJson<T>(string json, string what) =>
        JsonSerializer.Deserialize<T>(json, ContractJson.Options)
        ?? throw new InvalidDataException($"The stored JSON of {what} is null.");
}
