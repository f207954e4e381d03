using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Conversations.Grains.Tools.Secrets;

/// <summary>
/// Tool settings that carry credentials (HTTP tools' headers, MCP servers' headers and environment) name them instead
/// of holding them: <c>${secret:WEATHER_KEY}</c> is replaced by the configuration value <c>WEATHER_KEY</c> (an
/// environment variable, a user secret, a mounted secret file: whatever configuration source holds it) when the value
/// is used. The resolved values are collected so that whatever comes back from the tool can be scrubbed of them
/// (<see cref="SecretRedactor"/>): a secret never reaches an event, a log line or the model.
/// </summary>
public static partial class SecretReferences
{
    /// <summary>What a redacted secret is replaced with.</summary>
    public const string Mask = "***";

    [GeneratedRegex(@"\$\{secret:([A-Za-z0-9_.:\-]+)\}", RegexOptions.CultureInvariant)]
    private static partial Regex Reference();

    /// <summary>The names of the secrets <paramref name="text"/> refers to.</summary>
    public static IReadOnlyList<string> NamesIn(string? text) =>
        text is null ? [] : [.. Reference().Matches(text).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal)];

    /// <summary>The secrets of <paramref name="texts"/> that configuration does not hold (an empty value counts as missing).</summary>
    public static IReadOnlyList<string> Missing(IEnumerable<string?> texts, IConfiguration configuration) =>
        [.. texts.SelectMany(NamesIn).Distinct(StringComparer.Ordinal).Where(name => string.IsNullOrEmpty(configuration[name]))];

    /// <summary>
    /// <paramref name="text"/> with every reference replaced by its value, each value added to <paramref name="redactor"/>.
    /// Throws <see cref="ToolException"/> naming a secret that configuration lacks (never a value).
    /// </summary>
    public static string Resolve(string text, IConfiguration configuration, SecretRedactor redactor) =>
        Reference().Replace(text, match =>
        {
            var name = match.Groups[1].Value;
            var value = configuration[name];
            if (string.IsNullOrEmpty(value))
            {
                throw new ToolException($"The secret '{name}' that the tool's settings name is not configured.");
            }

            redactor.Add(value);
            return value;
        });
}

/// <summary>Replaces known secret values with <see cref="SecretReferences.Mask"/> in text that leaves a tool. Thread-safe.</summary>
public sealed class SecretRedactor
{
    private readonly Lock _gate = new();
    private string[] _values = [];

    public void Add(string value)
    {
        lock (_gate)
        {
            if (value.Length > 0 && !_values.Contains(value, StringComparer.Ordinal))
            {
                // Longest first, so a secret that contains another is masked whole.
                _values = [.. _values.Append(value).OrderByDescending(v => v.Length)];
            }
        }
    }

    public string Redact(string text)
    {
        foreach (var value in Volatile.Read(ref _values))
        {
            text = text.Replace(value, SecretReferences.Mask, StringComparison.Ordinal);
        }

        return text;
    }
}
