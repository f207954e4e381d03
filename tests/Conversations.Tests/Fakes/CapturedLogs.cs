using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Conversations.Tests.Fakes;

/// <summary>
/// A logger provider that keeps every line (category, level, message, exception, and the key-value pairs of the scopes
/// it was logged in) to look through afterwards.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<CapturedLine> _lines = new();
    private IExternalScopeProvider? _scopes;

    public IReadOnlyList<CapturedLine> Lines => [.. _lines];

    /// <summary>Every line as one text: category, message and exception.</summary>
    public string AllText => string.Join("\n", _lines.Select(l => $"{l.Category} {l.Level} {l.Message} {l.Exception}"));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    public sealed record CapturedLine(string Category, LogLevel Level, EventId EventId, string Message, string? Exception)
    {
        /// <summary>The pairs of the scopes the line was logged in (the innermost wins a key).</summary>
        public IReadOnlyDictionary<string, object?> Scopes { get; init; } = new Dictionary<string, object?>();
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scopes = new Dictionary<string, object?>(StringComparer.Ordinal);
            owner._scopes?.ForEachScope(
                static (scope, pairs) =>
                {
                    if (scope is IEnumerable<KeyValuePair<string, object?>> values)
                    {
                        foreach (var (key, value) in values)
                        {
                            pairs[key] = value;
                        }
                    }
                },
                scopes);
            owner._lines.Enqueue(new CapturedLine(category, logLevel, eventId, formatter(state, exception), exception?.ToString()) { Scopes = scopes });
        }
    }
}
