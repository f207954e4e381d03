using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Json.Schema;

namespace Conversations.Grains.Tools.Validation;

/// <summary>
/// Checks the model's arguments against a tool's JSON schema (<see cref="ToolDefinition.ParametersSchema"/>) before the
/// tool is called, with JsonSchema.Net (drafts 6, 7, 2019-09 and 2020-12; the <c>$schema</c> keyword chooses, 2020-12
/// otherwise; <c>format</c> is not asserted). The message of a failure names each offending field and is what the
/// model reads as the failed call's result.
/// </summary>
/// <remarks>
/// Each schema is compiled once per <see cref="ToolDefinition"/> instance (built-ins share one; an MCP server's tools
/// get new ones when it is listed again), into a registry of its own, so two tools' <c>$id</c>s never collide. A
/// schema the library cannot compile (an unknown dialect, a dangling <c>$ref</c>) checks nothing: the tool is called
/// and judges its arguments itself, as it did before validation existed.
/// </remarks>
public static class ToolArguments
{
    private const int MaxReportedErrors = 5;

    private static readonly ConditionalWeakTable<ToolDefinition, Compiled> Schemas = new();

    private static readonly EvaluationOptions Evaluation = new() { OutputFormat = OutputFormat.List };

    static ToolArguments()
    {
        // The library's messages, process-wide (nothing else here uses it): two of its defaults tell the model too little.
        ErrorMessages.Enum = "[[received]] is not one of [[values]]";
        ErrorMessages.FalseSchema = "not allowed by the tool's parameters";
    }

    /// <summary>Null when <paramref name="arguments"/> satisfy the tool's schema; otherwise what is wrong, for the model.</summary>
    public static string? Validate(ToolDefinition definition, JsonElement arguments)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var schema = Schemas.GetValue(definition, static d => Compile(d.ParametersSchema)).Schema;
        if (schema is null)
        {
            return null;
        }

        EvaluationResults results;
        try
        {
            results = schema.Evaluate(arguments, Evaluation);
        }
        catch (Exception ex) when (ex is JsonSchemaException or RefResolutionException or InvalidOperationException)
        {
            return null; // a schema that only fails when used (a $ref to nowhere) checks nothing, as one that does not compile
        }

        if (results.IsValid)
        {
            return null;
        }

        var problems = Problems(results).Distinct().ToList();
        var text = new StringBuilder($"Invalid arguments for '{definition.Name}': ");
        text.AppendJoin("; ", problems.Take(MaxReportedErrors));
        if (problems.Count > MaxReportedErrors)
        {
            text.Append($"; and {problems.Count - MaxReportedErrors} more");
        }

        if (problems.Count == 0)
        {
            text.Append("they do not match the tool's parameters schema");
        }

        text.Append(". The tool was not called; call it again with arguments that match its parameters.");
        return text.ToString();
    }

    /// <summary>True when the schema compiles (a tool whose schema does not is called unchecked).</summary>
    public static bool CanValidate(ToolDefinition definition) =>
        Schemas.GetValue(definition, static d => Compile(d.ParametersSchema)).Schema is not null;

    private static IEnumerable<string> Problems(EvaluationResults results)
    {
        var nodes = results.Details is { Count: > 0 } details ? details.Prepend(results) : [results];
        foreach (var node in nodes)
        {
            if (node.Errors is not { Count: > 0 } errors)
            {
                continue;
            }

            var field = FieldName(node.InstanceLocation.ToString());
            foreach (var (keyword, message) in errors)
            {
                yield return field is null ? Describe(keyword, message) : $"'{field}': {Describe(keyword, message)}";
            }
        }
    }

    private static string Describe(string keyword, string message) =>
        keyword == "required" ? message.Replace("Required properties", "missing required argument(s)", StringComparison.Ordinal).Replace(" are not present", "", StringComparison.Ordinal) : message;

    /// <summary><c>/items/0/name</c> → <c>items[0].name</c>; the root → null.</summary>
    private static string? FieldName(string pointer)
    {
        if (pointer is "" or "#" or "/" or "#/")
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (var raw in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var segment = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (segment.All(char.IsAsciiDigit) && text.Length > 0)
            {
                text.Append('[').Append(segment).Append(']');
            }
            else
            {
                if (text.Length > 0)
                {
                    text.Append('.');
                }

                text.Append(segment);
            }
        }

        return text.ToString();
    }

    private static Compiled Compile(JsonElement schema)
    {
        if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
        {
            return new Compiled(null);
        }

        try
        {
            return new Compiled(JsonSchema.Build(schema, new BuildOptions { SchemaRegistry = new SchemaRegistry() }));
        }
        catch (Exception ex) when (ex is JsonSchemaException or JsonException or ArgumentException or InvalidOperationException or UriFormatException or RefResolutionException)
        {
            return new Compiled(null);
        }
    }

    private sealed record Compiled(JsonSchema? Schema);
}
