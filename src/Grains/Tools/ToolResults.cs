using System.Diagnostics.CodeAnalysis;

namespace Conversations.Grains.Tools;

/// <summary>
/// How a tool failure is written into the tool message the model reads: <c>Error: {message}</c>, where the message is
/// the <see cref="ToolException"/>'s. The agent loop writes failures with <see cref="FormatError"/>; the demo model
/// recognises them with <see cref="TryGetError"/>.
/// </summary>
public static class ToolResults
{
    /// <summary>The prefix of a failed tool's result text.</summary>
    public const string ErrorPrefix = "Error: ";

    /// <summary>The tool message content for a failure: <c>Error: Division by zero at position 3</c>.</summary>
    public static string FormatError(string message) => ErrorPrefix + message;

    /// <summary>
    /// True when <paramref name="content"/> reports a failure: it starts with the word <c>Error</c> (any case, leading
    /// whitespace ignored) followed by a colon, whitespace or nothing. <paramref name="message"/> is the rest, without a leading colon or dash.
    /// </summary>
    public static bool TryGetError(string? content, [NotNullWhen(true)] out string? message)
    {
        message = null;
        var text = content.AsSpan().TrimStart();
        const string word = "Error";
        if (!text.StartsWith(word, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = text[word.Length..];
        if (!rest.IsEmpty && rest[0] != ':' && !char.IsWhiteSpace(rest[0]))
        {
            return false; // "Errors are rare" or "ErrorCount" is not a failure report
        }

        rest = rest.TrimStart().TrimStart(":-").Trim();
        message = rest.IsEmpty ? "unknown error" : rest.ToString();
        return true;
    }
}
