using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;

namespace Conversations.Tests.Tools;

public sealed class CalculateToolTests
{
    private readonly CalculateTool _tool = new();

    [Fact]
    public void Definition_is_named_calculate_and_requires_a_string_expression()
    {
        var definition = _tool.Definition;
        Assert.Equal("calculate", definition.Name);
        Assert.False(string.IsNullOrWhiteSpace(definition.Description));

        var schema = definition.ParametersSchema;
        Assert.Equal("object", schema.GetProperty("type").GetString());
        Assert.Equal("string", schema.GetProperty("properties").GetProperty("expression").GetProperty("type").GetString());
        Assert.Equal(["expression"], schema.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData("""{"expression":"17 * 23"}""", "391")]
    [InlineData("""{"expression":"1/3"}""", "0.333333333333333")]
    [InlineData("""{"expression":"(2+3)^2","extra":true}""", "25")]
    public async Task Result_text_is_just_the_number(string arguments, string expected)
    {
        var result = await _tool.InvokeAsync(Parse(arguments), TestContext.Current.CancellationToken);
        Assert.Equal(expected, result);
    }

    [Theory]
    [InlineData("{}", "Missing required argument 'expression' (a string such as \"17 * 23\").")]
    [InlineData("""{"expression":null}""", "Missing required argument 'expression' (a string such as \"17 * 23\").")]
    [InlineData("[]", "Missing required argument 'expression' (a string such as \"17 * 23\").")]
    [InlineData("""{"expression":42}""", "Argument 'expression' must be a string, not number.")]
    [InlineData("""{"expression":"2 + @"}""", "Unexpected character '@' at position 5")]
    public async Task Bad_arguments_are_tool_exceptions_naming_the_problem(string arguments, string message)
    {
        var error = await Assert.ThrowsAsync<ToolException>(
            async () => await _tool.InvokeAsync(Parse(arguments), TestContext.Current.CancellationToken));
        Assert.Equal(message, error.Message);
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
