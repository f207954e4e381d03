using Microsoft.Playwright;

namespace Conversations.Tests.Browser;

/// <summary>
/// Real headless Chromium — Debian's <c>chromium</c> package, launched by Playwright through
/// <see cref="BrowserTypeLaunchOptions.ExecutablePath"/>; Playwright's own browser download is never used. A machine
/// without it fails these tests with a message saying what to install (tests/run.sh installs it).
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    /// <summary>Where the browser is: <c>CONVERSATIONS_TEST_CHROMIUM</c>, else Debian's paths.</summary>
    public const string PathVariable = "CONVERSATIONS_TEST_CHROMIUM";

    private static readonly string[] DebianPaths = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

    private readonly IPlaywright _playwright;

    private HeadlessChromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    /// <summary>The folder screenshots go to: <c>TestResults/screenshots</c> under the tests' output folder.</summary>
    public static string ScreenshotFolder { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    public static async Task<HeadlessChromium> LaunchAsync()
    {
        var executable = Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } configured
            ? configured
            : DebianPaths.FirstOrDefault(File.Exists);
        if (executable is null || !File.Exists(executable))
        {
            throw new InvalidOperationException(
                $"The browser tests need Chromium and found none (looked at {PathVariable} and {string.Join(", ", DebianPaths)}). " +
                "Install Debian's package: apt-get install -y chromium (tests/run.sh does so when run as root).");
        }

        // Playwright never downloads a browser here.
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = executable,
                Headless = true,
                // Root in CI and containers: Chromium's sandbox needs a user namespace it may not have. /dev/shm is small in containers.
                Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            });
            return new HeadlessChromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A new page in a context of its own (its own storage), at <paramref name="viewport"/> or a desktop size.</summary>
    public async Task<IPage> NewPageAsync(Uri baseUrl, ViewportSize? viewport = null)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseUrl.ToString(),
            ViewportSize = viewport ?? new ViewportSize { Width = 1280, Height = 900 },
        });
        context.SetDefaultTimeout((float)TestTimeouts.Default.TotalMilliseconds);
        return await context.NewPageAsync();
    }

    /// <summary>Saves a full-page screenshot as a test artifact; returns its path.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        var path = Path.Combine(ScreenshotFolder, $"{name}.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
