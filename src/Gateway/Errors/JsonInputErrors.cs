using System.Collections;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace Conversations.Gateway.Errors;

/// <summary>
/// What was wrong with a JSON request body, in a client developer's words: the field (as the client spelled its path:
/// <c>messages[0].content</c>; null for the body as a whole) and the problem (<c>must be a string</c>, <c>is not valid
/// UTF-8</c>, <c>is not valid JSON: …</c>). Never a CLR type name: System.Text.Json's own messages name the .NET type
/// being read ("could not be converted to Conversations.Gateway.Threads.SendMessageRequest"), so the expected JSON type
/// is worked out from the request type's serialization contract at the failing path instead.
/// </summary>
/// <param name="Field">The field's path, or null for the whole body.</param>
/// <param name="Problem">What is wrong with it, as a predicate: "must be a string".</param>
public sealed record JsonInputError(string? Field, string Problem)
{
    /// <summary>The field, or <c>body</c> for the whole body: the key of a ValidationProblem's <c>errors</c>.</summary>
    public string Key => Field ?? "body";

    /// <summary>A sentence: <c>content must be a string.</c> / <c>The request body must be a JSON object.</c></summary>
    public string Message(bool quoteField = false) =>
        Field is null
            ? $"The request body {Problem}."
            : quoteField ? $"'{Field}' {Problem}." : $"{Field} {Problem}.";
}

/// <summary>Turns System.Text.Json's exceptions into <see cref="JsonInputError"/>s.</summary>
public static class JsonInputErrors
{
    /// <summary>
    /// Describes <paramref name="exception"/>, thrown while reading <paramref name="target"/> with
    /// <paramref name="options"/>. <paramref name="fieldPrefix"/> goes before the field (a body nested in an envelope).
    /// </summary>
    public static JsonInputError Describe(JsonException exception, Type? target, JsonSerializerOptions options, string? fieldPrefix = null)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var segments = Segments(exception.Path);
        var field = Field(segments, fieldPrefix);
        var position = exception.LineNumber is { } line && exception.BytePositionInLine is { } column
            ? $" (line {line + 1}, byte {column + 1})"
            : string.Empty;

        if (IsSyntaxError(exception, out var syntax))
        {
            return new JsonInputError(field, $"is not valid JSON: {ReaderMessage(syntax)}{position}");
        }

        if (exception.InnerException is InvalidOperationException text && TextProblem(text) is { } problem)
        {
            return new JsonInputError(field, problem);
        }

        var expected = target is null ? null : ExpectedAt(target, options, segments);
        return new JsonInputError(field, expected switch
        {
            null => "has a value of the wrong type",
            "an object" when segments.Count == 0 => "must be a JSON object",
            _ => $"must be {expected}",
        });
    }

    /// <summary>
    /// The value of a JSON string (read lazily, as <see cref="JsonElement"/>s are), or null and the problem when it is not
    /// text: invalid UTF-8, or a <c>\u</c> escape of a lone surrogate.
    /// </summary>
    public static string? TextOf(JsonElement element, out string? problem)
    {
        try
        {
            problem = null;
            return element.GetString();
        }
        catch (InvalidOperationException ex) when (TextProblem(ex) is { } text)
        {
            problem = text;
            return null;
        }
    }

    /// <summary>The problem of a string that System.Text.Json could not decode, or null for another failure.</summary>
    public static string? TextProblem(InvalidOperationException exception)
    {
        if (exception.Message.Contains("UTF-8", StringComparison.Ordinal))
        {
            return "is not valid UTF-8 text";
        }

        return exception.Message.Contains("UTF-16", StringComparison.Ordinal) || exception.Message.Contains("surrogate", StringComparison.OrdinalIgnoreCase)
            ? @"holds a \u escape of a lone UTF-16 surrogate (\uD800-\uDFFF must come in high-low pairs), which is not text"
            : null;
    }

    /// <summary>True for a malformed document (the reader's error, possibly rethrown by the serializer with a path).</summary>
    private static bool IsSyntaxError(JsonException exception, out JsonException reader)
    {
        // System.Text.Json's reader throws its own JsonException subtype; the serializer wraps it with the path.
        if (exception.GetType() != typeof(JsonException))
        {
            reader = exception;
            return true;
        }

        if (exception.InnerException is JsonException inner && inner.GetType() != typeof(JsonException))
        {
            reader = inner;
            return true;
        }

        reader = exception;
        return false;
    }

    /// <summary>The reader's message without its position suffix: "'}' is an invalid start of a value".</summary>
    private static string ReaderMessage(JsonException reader)
    {
        var message = reader.Message;
        foreach (var marker in new[] { " Path:", " LineNumber:" })
        {
            var cut = message.IndexOf(marker, StringComparison.Ordinal);
            if (cut >= 0)
            {
                message = message[..cut];
            }
        }

        message = message.Trim().TrimEnd('.');
        // A safety net: the reader's messages speak of JSON, but none of ours may name a .NET type.
        return message.Contains("System.", StringComparison.Ordinal) || message.Contains("Conversations.", StringComparison.Ordinal)
            ? "malformed JSON"
            : message;
    }

    /// <summary>A client's spelling of the path: <c>messages[0].content</c>, <c>metadata['a b']</c>; null for the root.</summary>
    private static string? Field(IReadOnlyList<object> segments, string? prefix)
    {
        var path = new StringBuilder(prefix);
        foreach (var segment in segments)
        {
            switch (segment)
            {
                case int index:
                    path.Append('[').Append(index).Append(']');
                    break;
                case string name when IsPlainName(name):
                    if (path.Length > 0)
                    {
                        path.Append('.');
                    }

                    path.Append(name);
                    break;
                case string name:
                    path.Append("['").Append(name.Replace("'", "\\'", StringComparison.Ordinal)).Append("']");
                    break;
            }
        }

        return path.Length == 0 ? null : path.ToString();
    }

    private static bool IsPlainName(string name) => name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    /// <summary><c>$.messages[0]['a b']</c> → <c>messages</c>, <c>0</c>, <c>a b</c>.</summary>
    private static List<object> Segments(string? path)
    {
        var segments = new List<object>();
        if (string.IsNullOrEmpty(path))
        {
            return segments;
        }

        var i = path.StartsWith('$') ? 1 : 0;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var end = i + 1;
                while (end < path.Length && path[end] is not ('.' or '['))
                {
                    end++;
                }

                segments.Add(path[(i + 1)..end]);
                i = end;
            }
            else if (path[i] == '[' && i + 1 < path.Length && path[i + 1] == '\'')
            {
                var end = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                end = end < 0 ? path.Length : end;
                segments.Add(path[(i + 2)..end]);
                i = Math.Min(path.Length, end + 2);
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                end = end < 0 ? path.Length : end;
                segments.Add(int.TryParse(path.AsSpan(i + 1, end - i - 1), out var index) ? index : (object)path[(i + 1)..end]);
                i = Math.Min(path.Length, end + 1);
            }
            else
            {
                i++;
            }
        }

        return segments;
    }

    /// <summary>The JSON the request type expects at the path ("a string", "an array", …), or null when unknown.</summary>
    private static string? ExpectedAt(Type target, JsonSerializerOptions options, IReadOnlyList<object> segments)
    {
        var type = target;
        try
        {
            foreach (var segment in segments)
            {
                var info = options.GetTypeInfo(type);
                Type? next = info.Kind switch
                {
                    JsonTypeInfoKind.Object when segment is string name => info.Properties
                        .FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))?.PropertyType,
                    JsonTypeInfoKind.Dictionary => info.ElementType,
                    JsonTypeInfoKind.Enumerable when segment is int => info.ElementType,
                    _ => null,
                };
                if (next is null)
                {
                    return null;
                }

                type = next;
            }

            return Describe(type, options);
        }
        catch (Exception ex) when (ex is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private static string? Describe(Type type, JsonSerializerOptions options)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string) || type == typeof(char))
        {
            return "a string";
        }

        if (type == typeof(bool))
        {
            return "true or false";
        }

        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte)
            || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(sbyte))
        {
            return "an integer";
        }

        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal))
        {
            return "a number";
        }

        if (type == typeof(DateTimeOffset) || type == typeof(DateTime))
        {
            return "a date and time in ISO 8601 (\"2026-01-31T12:00:00Z\")";
        }

        if (type == typeof(TimeSpan))
        {
            return "a duration (\"00:00:30\")";
        }

        if (type == typeof(Guid))
        {
            return "a UUID string";
        }

        if (type.IsEnum)
        {
            return $"one of {string.Join(", ", Enum.GetNames(type).Select(n => $"'{options.PropertyNamingPolicy?.ConvertName(n) ?? n}'"))}";
        }

        if (type == typeof(JsonElement) || type == typeof(JsonNode) || type == typeof(object))
        {
            return null;
        }

        var info = options.GetTypeInfo(type);
        return info.Kind switch
        {
            JsonTypeInfoKind.Dictionary => info.ElementType == typeof(string) ? "an object whose values are strings" : "an object",
            JsonTypeInfoKind.Enumerable => info.ElementType is { } element && Describe(element, options) is { } item ? $"an array of {Plural(item)}" : "an array",
            JsonTypeInfoKind.Object => "an object",
            _ when typeof(IEnumerable).IsAssignableFrom(type) => "an array",
            _ => null,
        };
    }

    /// <summary>"a string" → "strings", "an object" → "objects"; left as is when it is not one noun.</summary>
    private static string Plural(string item) => item switch
    {
        "a string" => "strings",
        "an integer" => "integers",
        "a number" => "numbers",
        "an object" => "objects",
        "an array" => "arrays",
        "true or false" => "booleans",
        _ => $"values that are each {item}",
    };
}
