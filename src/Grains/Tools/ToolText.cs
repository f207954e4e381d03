namespace Conversations.Grains.Tools;

/// <summary>How text from outside (an HTTP body, an MCP server's answer) is cut to size for the model.</summary>
public static class ToolText
{
    /// <summary>The most characters of a result the model reads unless a tool says otherwise.</summary>
    public const int DefaultMaxResultChars = 16_000;

    /// <summary>The most characters of a body quoted in an error.</summary>
    public const int ExcerptChars = 300;

    /// <summary>
    /// <paramref name="text"/> cut to <paramref name="maxChars"/> characters, with a line saying it was when it was;
    /// <paramref name="truncated"/> forces the note (the reader stopped before the end of a longer body).
    /// </summary>
    public static string Limit(string text, int maxChars, bool truncated = false)
    {
        if (text.Length <= maxChars && !truncated)
        {
            return text;
        }

        var kept = text.Length <= maxChars ? text : text[..maxChars];
        if (kept.Length > 0 && char.IsHighSurrogate(kept[^1]))
        {
            kept = kept[..^1];
        }

        return kept + $"\n[truncated: the result is longer than {maxChars} characters; only the first {kept.Length} are shown]";
    }

    /// <summary>The start of a body for an error message, on one line.</summary>
    public static string Excerpt(string text)
    {
        var line = string.Join(' ', text.Split((char[])['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        if (line.Length == 0)
        {
            return "(empty body)";
        }

        return line.Length <= ExcerptChars ? line : line[..ExcerptChars] + "…";
    }
}
