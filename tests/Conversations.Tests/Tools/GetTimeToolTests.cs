using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Time;

namespace Conversations.Tests.Tools;

public sealed class GetTimeToolTests
{
    [Fact]
    public void Definition_is_named_get_time_with_an_optional_timezone()
    {
        var definition = new GetTimeTool(TimeProvider.System).Definition;
        Assert.Equal("get_time", definition.Name);
        var schema = definition.ParametersSchema;
        Assert.Equal("string", schema.GetProperty("properties").GetProperty("timezone").GetProperty("type").GetString());
        Assert.False(schema.TryGetProperty("required", out _));
    }

    [Fact]
    public async Task Tokyo_time_is_the_pinned_instant_in_local_time_as_compact_json()
    {
        var tool = new GetTimeTool(new FixedTimeProvider(new DateTimeOffset(2026, 11, 22, 5, 3, 0, TimeSpan.Zero)));

        var result = await tool.InvokeAsync(Parse("""{"timezone":"Asia/Tokyo"}"""), TestContext.Current.CancellationToken);

        Assert.Equal(
            """{"timezone":"Asia/Tokyo","localTime":"2026-11-22T14:03:00+09:00","utcOffset":"+09:00","dayOfWeek":"Sunday"}""",
            result);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"timezone":null}""")]
    [InlineData("""{"timezone":"  "}""")]
    public async Task Timezone_defaults_to_UTC(string arguments)
    {
        var tool = new GetTimeTool(new FixedTimeProvider(new DateTimeOffset(2026, 1, 2, 23, 59, 59, TimeSpan.Zero)));

        var result = await tool.InvokeAsync(Parse(arguments), TestContext.Current.CancellationToken);

        Assert.Equal(
            """{"timezone":"UTC","localTime":"2026-01-02T23:59:59+00:00","utcOffset":"+00:00","dayOfWeek":"Friday"}""",
            result);
    }

    [Theory]
    [InlineData(2026, 1, 15, "2026-01-15T07:00:00-05:00", "-05:00", "Thursday")] // EST
    [InlineData(2026, 7, 15, "2026-07-15T08:00:00-04:00", "-04:00", "Wednesday")] // EDT
    public async Task Daylight_saving_time_changes_the_offset_in_New_York(
        int year, int month, int day, string localTime, string offset, string dayOfWeek)
    {
        var tool = new GetTimeTool(new FixedTimeProvider(new DateTimeOffset(year, month, day, 12, 0, 0, TimeSpan.Zero)));

        var result = await tool.InvokeAsync(Parse("""{"timezone":"America/New_York"}"""), TestContext.Current.CancellationToken);

        using var json = JsonDocument.Parse(result);
        Assert.Equal(localTime, json.RootElement.GetProperty("localTime").GetString());
        Assert.Equal(offset, json.RootElement.GetProperty("utcOffset").GetString());
        Assert.Equal(dayOfWeek, json.RootElement.GetProperty("dayOfWeek").GetString());
    }

    [Fact]
    public async Task Half_hour_offsets_and_date_changes_are_reported()
    {
        var tool = new GetTimeTool(new FixedTimeProvider(new DateTimeOffset(2026, 3, 1, 20, 0, 0, TimeSpan.Zero)));

        var result = await tool.InvokeAsync(Parse("""{"timezone":"Asia/Kolkata"}"""), TestContext.Current.CancellationToken);

        Assert.Equal(
            """{"timezone":"Asia/Kolkata","localTime":"2026-03-02T01:30:00+05:30","utcOffset":"+05:30","dayOfWeek":"Monday"}""",
            result);
    }

    [Theory]
    [InlineData("Mars/Base", "Unknown time zone 'Mars/Base'. Use an IANA id such as 'Europe/Paris'.")]
    [InlineData("../../etc/passwd", "Unknown time zone '../../etc/passwd'. Use an IANA id such as 'Europe/Paris'.")]
    [InlineData("Tokyo Standard Time", "Unknown time zone 'Tokyo Standard Time'. Use an IANA id such as 'Europe/Paris'.")]
    public async Task Unknown_time_zones_are_tool_exceptions_suggesting_an_IANA_id(string zone, string message)
    {
        var tool = new GetTimeTool(TimeProvider.System);
        var arguments = Parse(JsonSerializer.Serialize(new Dictionary<string, string> { ["timezone"] = zone }));

        var error = await Assert.ThrowsAsync<ToolException>(
            async () => await tool.InvokeAsync(arguments, TestContext.Current.CancellationToken));

        Assert.Equal(message, error.Message);
    }

    [Fact]
    public async Task A_non_string_timezone_is_a_tool_exception_naming_the_field()
    {
        var tool = new GetTimeTool(TimeProvider.System);

        var error = await Assert.ThrowsAsync<ToolException>(
            async () => await tool.InvokeAsync(Parse("""{"timezone":9}"""), TestContext.Current.CancellationToken));

        Assert.Contains("'timezone'", error.Message, StringComparison.Ordinal);
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
