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
}
