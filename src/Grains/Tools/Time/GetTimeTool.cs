using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Conversations.Grains.Tools.Time;

/// <summary>
/// The <c>get_time</c> tool: the current local time in an IANA time zone, read from <see cref="TimeProvider"/> and the
/// system time-zone database. Returns a compact JSON object:
/// <c>{"timezone":"Asia/Tokyo","localTime":"2026-11-22T14:03:00+09:00","utcOffset":"+09:00","dayOfWeek":"Sunday"}</c>.
/// </summary>
/// <remarks>
/// Time zones come from the OS database (<c>/usr/share/zoneinfo</c> on Linux), which works with
/// <c>InvariantGlobalization</c>; Windows zone names are not accepted because converting them needs ICU.
/// </remarks>
public sealed class GetTimeTool(TimeProvider timeProvider) : ITool
{
    /// <summary>The tool's function name.</summary>
    public const string ToolName = "get_time";

    /// <summary>The name of the optional time-zone argument.</summary>
    public const string TimeZoneArgument = "timezone";

    /// <summary>The zone used when the model names none.</summary>
    public const string DefaultTimeZone = "UTC";

    private const int MaxTimeZoneIdLength = 64;

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Keep '+' in offsets readable ("+09:00", not "\u002B09:00"); the text goes to a model, not into HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly ToolDefinition SharedDefinition = new(
        ToolName,
        "Returns the current date and time in a time zone: local time (ISO 8601), UTC offset and day of the week.",
        ParseSchema("""
            {
              "type": "object",
              "properties": {
                "timezone": {
                  "type": "string",
                  "description": "An IANA time zone id such as \"Europe/Paris\", \"Asia/Tokyo\" or \"America/New_York\". Defaults to \"UTC\"."
                }
              }
            }
            """));

    private readonly TimeProvider _timeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));

    /// <inheritdoc />
    public ToolDefinition Definition => SharedDefinition;

    /// <inheritdoc />
    public ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var zoneId = ReadTimeZoneId(arguments);
        var zone = FindTimeZone(zoneId);
        var local = TimeZoneInfo.ConvertTime(_timeProvider.GetUtcNow(), zone);
        return ValueTask.FromResult(Describe(zoneId, local));
    }

    private static string ReadTimeZoneId(JsonElement arguments)
    {
        if (arguments.ValueKind != JsonValueKind.Object
            || !arguments.TryGetProperty(TimeZoneArgument, out var value)
            || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return DefaultTimeZone;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw new ToolException(
                $"Argument '{TimeZoneArgument}' must be a string such as \"Europe/Paris\", not {value.ValueKind.ToString().ToLowerInvariant()}.");
        }

        var id = value.GetString()!.Trim();
        return id.Length == 0 ? DefaultTimeZone : id;
    }

    private static TimeZoneInfo FindTimeZone(string id)
    {
        // The id becomes a path under the zoneinfo directory: accept only the characters IANA ids use.
        if (id.Length <= MaxTimeZoneIdLength
            && !id.Contains("..", StringComparison.Ordinal)
            && !id.StartsWith('/')
            && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '+'))
        {
            try
            {
                return TimeZoneInfo.FindSystemTimeZoneById(id);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                throw UnknownTimeZone(id, e);
            }
        }

        throw UnknownTimeZone(id, null);
    }

    private static ToolException UnknownTimeZone(string id, Exception? inner)
    {
        var shown = id.Length <= MaxTimeZoneIdLength ? id : id[..MaxTimeZoneIdLength] + "…";
        return new ToolException($"Unknown time zone '{shown}'. Use an IANA id such as 'Europe/Paris'.", inner);
    }

    private static string Describe(string zoneId, DateTimeOffset local)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("timezone", zoneId);
            writer.WriteString("localTime", local.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture));
            writer.WriteString("utcOffset", local.ToString("zzz", CultureInfo.InvariantCulture));
            writer.WriteString("dayOfWeek", local.DayOfWeek.ToString());
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static JsonElement ParseSchema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
