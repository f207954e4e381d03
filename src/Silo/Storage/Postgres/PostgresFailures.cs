using System.Net.Sockets;
using System.Text;
using Conversations.Grains.Abstractions.Threads;
using Npgsql;

namespace Conversations.Silo.Storage.Postgres;

/// <summary>
/// How the PostgreSQL storage reports that the database could not be reached or failed: always as
/// <see cref="StorageUnavailableException"/>, never as a driver's exception, which would have to cross the grain
/// boundary and which an Orleans client could not deserialize. The driver's exception is not kept as the inner
/// exception for the same reason; its type and message (and those of its inner exceptions) are in the message
/// instead.
/// </summary>
internal static class PostgresFailures
{
    /// <summary>
    /// Opens a pooled connection, runs <paramref name="work"/> on it and maps a driver failure (anything
    /// <see cref="IsDriverFailure"/> accepts) to <see cref="StorageUnavailableException"/>. A failure seen after
    /// <paramref name="cancellationToken"/> was cancelled is reported as the cancellation.
    /// </summary>
    /// <param name="database">The database.</param>
    /// <param name="operation">What was being done, for the message ("read the messages of thread 'thr_1'").</param>
    /// <param name="work">The statements; exceptions of its own (a conflict, bad data) pass through unchanged.</param>
    /// <param name="cancellationToken">Ends the operation.</param>
    public static async Task<T> RunAsync<T>(
        this PostgresDatabase database,
        string operation,
        Func<NpgsqlConnection, CancellationToken, Task<T>> work,
        CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await work(connection, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsDriverFailure(e))
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw Unavailable(operation, e);
        }
    }

    /// <summary>
    /// True for what a database call throws when the server is unreachable, slow, restarting or refuses the
    /// statement: <see cref="NpgsqlException"/> (<see cref="PostgresException"/> included), <see cref="TimeoutException"/>,
    /// <see cref="SocketException"/> and <see cref="IOException"/>. Cancellation is not a failure.
    /// </summary>
    public static bool IsDriverFailure(Exception exception) =>
        exception is NpgsqlException or TimeoutException or SocketException or IOException;

    /// <summary>The exception to throw in place of <paramref name="failure"/>.</summary>
    public static StorageUnavailableException Unavailable(string operation, Exception failure) =>
        new($"The PostgreSQL storage could not {operation}: {Describe(failure)}");

    private static string Describe(Exception failure)
    {
        var text = new StringBuilder();
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (text.Length > 0)
            {
                text.Append(" <- ");
            }

            text.Append(e.GetType().Name).Append(": ").Append(e.Message); // a PostgresException's starts with its SQLSTATE
        }

        return text.ToString();
    }
}
