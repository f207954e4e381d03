namespace Conversations.Gateway.Threads;

/// <summary>
/// What every API takes as a message's text, whatever its dialect: at most <see cref="MaxLength"/> characters and no
/// NUL character (U+0000), which no text column of PostgreSQL can hold — refused up front, so a message is never
/// accepted on one topology and lost on the other.
/// </summary>
public static class MessageText
{
    public const int MaxLength = 100_000;

    /// <summary>What is wrong with <paramref name="text"/> as a message, phrased to follow its field's name; null when nothing.</summary>
    public static string? Problem(string text) =>
        text.Length > MaxLength ? $"must be at most {MaxLength} characters."
        : text.Contains('\0', StringComparison.Ordinal) ? @"must not contain the NUL character (\u0000)."
        : null;
}
