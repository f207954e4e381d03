using System.Text.Json;

namespace Conversations.Grains.Tools.Calculate;

/// <summary>
/// The <c>calculate</c> tool: evaluates an arithmetic expression with <see cref="ExpressionEvaluator"/> and returns
/// the number as text (<c>391</c>).
/// </summary>
public sealed class CalculateTool : ITool
{
    /// <summary>The tool's function name.</summary>
    public const string ToolName = "calculate";

    /// <summary>The name of the one argument.</summary>
    public const string ExpressionArgument = "expression";

    private static readonly ToolDefinition SharedDefinition = new(
        ToolName,
        "Evaluates an arithmetic expression exactly and returns the number. Use it for any arithmetic instead of "
        + "computing in your head. Supports + - * / % ^ (power), parentheses, the constants pi and e, and the functions "
        + "sqrt, abs, sin, cos, tan, asin, acos, atan (radians), ln, log (base 10), log2, exp, floor, ceil, round, "
        + "min, max and pow. Write every multiplication with '*': 2*pi, not 2pi.",
        ParseSchema("""
            {
              "type": "object",
              "properties": {
                "expression": {
                  "type": "string",
                  "description": "The arithmetic expression, for example \"17 * 23\" or \"sqrt(2) ^ 2 + max(1, 4)\"."
                }
              },
              "required": ["expression"]
            }
            """));

    /// <inheritdoc />
    public ToolDefinition Definition => SharedDefinition;

    /// <inheritdoc />
    public ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var expression = ReadExpression(arguments);
        var value = ExpressionEvaluator.Evaluate(expression);
        return ValueTask.FromResult(ExpressionEvaluator.Format(value));
    }

    private static string ReadExpression(JsonElement arguments)
    {
        if (arguments.ValueKind != JsonValueKind.Object
            || !arguments.TryGetProperty(ExpressionArgument, out var expression)
            || expression.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            throw new ToolException($"Missing required argument '{ExpressionArgument}' (a string such as \"17 * 23\").");
        }

        return expression.ValueKind == JsonValueKind.String
            ? expression.GetString()!
            : throw new ToolException(
                $"Argument '{ExpressionArgument}' must be a string, not {expression.ValueKind.ToString().ToLowerInvariant()}.");
    }

    private static JsonElement ParseSchema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
