using Microsoft.Extensions.Logging;

namespace Conversations.Grains.Tools.Secrets;

/// <summary>
/// The loggers handed to a third-party client that sees secrets (the MCP client: it logs whole protocol messages at
/// Trace, and a server may echo what it was given): every line is formatted, scrubbed of the known secrets and
/// passed on as plain text; an exception goes along as its redacted type and message only, never as the object
/// (whose message and data a provider would write out).
/// </summary>
public sealed class RedactingLoggerFactory(ILoggerFactory inner, SecretRedactor redactor) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new RedactingLogger(inner.CreateLogger(categoryName), redactor);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("Providers are added to the inner factory.");

    public void Dispose()
    {
        // The inner factory belongs to the host.
    }

    private sealed class RedactingLogger(ILogger inner, SecretRedactor redactor) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel))
            {
                return;
            }

            var text = formatter(state, exception);
            if (exception is not null)
            {
                text += $" ({exception.GetType().Name}: {exception.Message})";
            }

            inner.Log(logLevel, eventId, redactor.Redact(text), null, static (message, _) => message);
        }
    }
}
