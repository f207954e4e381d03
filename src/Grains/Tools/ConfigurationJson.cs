using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;

namespace Conversations.Grains.Tools;

/// <summary>
/// Reads a JSON schema that configuration gives, in either form:
/// <list type="bullet">
/// <item>a string holding the JSON text (<c>"Parameters": "{\"type\":\"object\", …}"</c>, or an environment variable):
/// taken verbatim, the exact form;</item>
/// <item>a JSON object written in <c>appsettings.json</c>, which configuration flattens into string values: it is put
/// back together with arrays for sections keyed 0, 1, …; numbers for the schema keywords that take numbers
/// (<c>minimum</c>, <c>maxLength</c>, …); booleans for those that take booleans (<c>additionalProperties</c>,
/// <c>uniqueItems</c>); and strings for everything else. A schema whose <c>enum</c>, <c>const</c> or
/// <c>default</c> holds numbers or booleans needs the string form.</item>
/// </list>
/// </summary>
public static class ConfigurationJson
{
    private static readonly HashSet<string> NumberKeywords = new(StringComparer.Ordinal)
    {
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains",
    };

    private static readonly HashSet<string> BooleanKeywords = new(StringComparer.Ordinal)
    {
        "additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems", "uniqueItems",
        "readOnly", "writeOnly", "deprecated", "nullable",
    };

    /// <summary>The JSON the section holds; null when the section is absent or empty. Throws <see cref="JsonException"/> for bad JSON text.</summary>
    public static JsonElement? Read(IConfigurationSection section)
    {
        if (!section.GetChildren().Any())
        {
            if (string.IsNullOrWhiteSpace(section.Value))
            {
                return null;
            }

            using var document = JsonDocument.Parse(section.Value);
            return document.RootElement.Clone();
        }

        var node = ToNode(section);
        return JsonSerializer.SerializeToElement(node);
    }

    private static JsonNode? ToNode(IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            return Leaf(section.Key, section.Value);
        }

        var indexes = children.Select(c => int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : -1).ToList();
        if (indexes.All(i => i >= 0) && indexes.Order().SequenceEqual(Enumerable.Range(0, children.Count)))
        {
            var array = new JsonArray();
            foreach (var child in children.OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
            {
                array.Add(ToNode(child));
            }

            return array;
        }

        var obj = new JsonObject();
        foreach (var child in children)
        {
            obj[child.Key] = ToNode(child);
        }

        return obj;
    }

    private static JsonNode? Leaf(string key, string? value)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length == 0)
        {
            // Configuration keeps an empty object or array ("properties": {}, "required": []) as an empty string.
            return key is "required" or "enum" or "allOf" or "anyOf" or "oneOf" ? new JsonArray() : new JsonObject();
        }

        if (NumberKeywords.Contains(key) && decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        if (BooleanKeywords.Contains(key) && bool.TryParse(value, out var flag))
        {
            return JsonValue.Create(flag);
        }

        return JsonValue.Create(value);
    }
}
