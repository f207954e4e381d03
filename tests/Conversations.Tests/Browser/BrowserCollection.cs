namespace Conversations.Tests.Browser;

/// <summary>
/// The browser tests share one Chromium and run one at a time (each drives a gateway and a browser; side by side
/// they would only slow each other down).
/// </summary>
[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<ChromiumFixture>
{
    public const string Name = "Browser";
}

/// <summary>One headless Chromium for the collection; a machine without Chromium fails every browser test, saying why.</summary>
public sealed class ChromiumFixture : IAsyncLifetime
{
    private HeadlessChromium? _chromium;

    public HeadlessChromium Chromium => _chromium ?? throw new InvalidOperationException("Chromium was not launched.");

    public async ValueTask InitializeAsync()
    {
        Microsoft.Playwright.Assertions.SetDefaultExpectTimeout((float)TestTimeouts.Default.TotalMilliseconds);
        _chromium = await HeadlessChromium.LaunchAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_chromium is not null)
        {
            await _chromium.DisposeAsync();
        }
    }
}
