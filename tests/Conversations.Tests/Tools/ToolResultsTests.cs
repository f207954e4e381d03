using Conversations.Grains.Tools;

namespace Conversations.Tests.Tools;

public sealed class ToolResultsTests
{
    [Fact]
    public void A_formatted_error_reads_back_as_the_same_message()
    {
        var content = ToolResults.FormatError("Division by zero at position 3");

        Assert.Equal("Error: Division by zero at position 3", content);
        Assert.True(ToolResults.TryGetError(content, out var message));
        Assert.Equal("Division by zero at position 3", message);
    }

    [Theory]
    [InlineData("error: bad input", "bad input")]
    [InlineData("  ERROR - timeout", "timeout")]
    [InlineData("Error", "unknown error")]
    public void Content_starting_with_the_word_error_is_a_failure(string content, string expected)
    {
        Assert.True(ToolResults.TryGetError(content, out var message));
        Assert.Equal(expected, message);
    }

    [Theory]
    [InlineData("391")]
    [InlineData("""{"timezone":"UTC"}""")]
    [InlineData("Errors are rare")]
    [InlineData("ErrorCount: 0")]
    [InlineData("")]
    [InlineData(null)]
    public void Other_content_is_not_a_failure(string? content)
    {
        Assert.False(ToolResults.TryGetError(content, out var message));
        Assert.Null(message);
    }
}
