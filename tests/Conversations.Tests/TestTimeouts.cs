namespace Conversations.Tests;

/// <summary>Hang guards: a test that waits forever fails instead. Never a timing assertion.</summary>
public static class TestTimeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(60);

    public static CancellationToken Guard()
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        source.CancelAfter(Default);
        return source.Token;
    }

    /// <summary>
    /// Reads until <paramref name="done"/> accepts the value (every 100 ms), and returns it; when the guard fires
    /// first, the last value read, for the caller's assertion to report.
    /// </summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        var guard = Guard();
        T value;
        while (!done(value = await read()))
        {
            try
            {
                await Task.Delay(100, guard);
            }
            catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
            {
                return value;
            }
        }

        return value;
    }
}
