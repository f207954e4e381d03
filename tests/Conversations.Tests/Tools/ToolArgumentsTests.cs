using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Time;
using Conversations.Grains.Tools.Validation;

namespace Conversations.Tests.Tools;

/// <summary>Arguments checked against a tool's JSON schema before the call: what the model reads when they do not match.</summary>
public sealed class ToolArgumentsTests
{
    private static readonly ToolDefinition Forecast = new("get_forecast", "Forecast.", Json("""
        {
          "type": "object",
          "properties": {
            "city": { "type": "string", "minLength": 1 },
            "days": { "type": "integer", "minimum": 1, "maximum": 14 },
            "units": { "enum": ["metric", "imperial"] },
            "stops": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] } }
          },
          "required": ["city"],
          "additionalProperties": false
        }
        """));

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Theory]
    [InlineData("""{"city":"Paris"}""")]
    [InlineData("""{"city":"Paris","days":3,"units":"metric","stops":[{"name":"Lyon"}]}""")]
    public void Arguments_that_match_pass(string arguments) =>
        Assert.Null(ToolArguments.Validate(Forecast, Json(arguments)));

    [Fact]
    public void A_missing_required_argument_is_named() =>
        Assert.Contains("city", ToolArguments.Validate(Forecast, Json("""{"days":3}""")), StringComparison.Ordinal);

    [Theory]
    [InlineData("""{"city":"Paris","days":"three"}""", "'days'")]
    [InlineData("""{"city":"Paris","days":30}""", "'days'")]
    [InlineData("""{"city":"Paris","units":"kelvin"}""", "'units'")]
    [InlineData("""{"city":""}""", "'city'")]
    [InlineData("""{"city":"Paris","stops":[{"name":"Lyon"},{"nom":"Nice"}]}""", "'stops[1]'")]
    [InlineData("""{"city":"Paris","country":"FR"}""", "country")]
    public void A_wrong_argument_is_named_with_its_path(string arguments, string field)
    {
        var error = ToolArguments.Validate(Forecast, Json(arguments));

        Assert.NotNull(error);
        Assert.StartsWith("Invalid arguments for 'get_forecast': ", error, StringComparison.Ordinal);
        Assert.Contains(field, error, StringComparison.Ordinal);
        Assert.EndsWith("The tool was not called; call it again with arguments that match its parameters.", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_say_what_is_allowed()
    {
        Assert.Equal(
            "Invalid arguments for 'get_forecast': 'units': \"kelvin\" is not one of [\"metric\",\"imperial\"]. The tool was not called; call it again with arguments that match its parameters.",
            ToolArguments.Validate(Forecast, Json("""{"city":"Paris","units":"kelvin"}""")));
        Assert.Contains("'country': not allowed by the tool's parameters", ToolArguments.Validate(Forecast, Json("""{"city":"Paris","country":"FR"}""")), StringComparison.Ordinal);
        Assert.Contains("missing required argument(s) [\"city\"]", ToolArguments.Validate(Forecast, Json("{}")), StringComparison.Ordinal);
    }

    [Fact]
    public void Arguments_that_are_not_an_object_fail() =>
        Assert.NotNull(ToolArguments.Validate(Forecast, Json("[1,2]")));

    [Fact]
    public void The_built_ins_schemas_compile_and_check()
    {
        var calculate = new CalculateTool().Definition;
        var time = new GetTimeTool(TimeProvider.System).Definition;

        Assert.Null(ToolArguments.Validate(calculate, Json("""{"expression":"1+1"}""")));
        Assert.Contains("'expression'", ToolArguments.Validate(calculate, Json("""{"expression":42}""")), StringComparison.Ordinal);
        Assert.Null(ToolArguments.Validate(time, Json("{}")));
        Assert.Contains("'timezone'", ToolArguments.Validate(time, Json("""{"timezone":9}""")), StringComparison.Ordinal);
    }

    [Fact]
    public void Two_schemas_with_the_same_id_do_not_collide()
    {
        var first = new ToolDefinition("a", "", Json("""{"$id":"https://example.com/args","type":"object","required":["x"]}"""));
        var second = new ToolDefinition("b", "", Json("""{"$id":"https://example.com/args","type":"object","required":["y"]}"""));

        Assert.Contains("x", ToolArguments.Validate(first, Json("{}")), StringComparison.Ordinal);
        Assert.Contains("y", ToolArguments.Validate(second, Json("{}")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_schema_the_validator_cannot_compile_checks_nothing()
    {
        var broken = new ToolDefinition("broken", "", Json("""{"type":"object","properties":{"x":{"$ref":"#/$defs/missing"}}}"""));

        Assert.Null(ToolArguments.Validate(broken, Json("""{"x":1}""")));
    }
}
