using System.Text.Json;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Conversations.Tests.Gateway.Ops;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Conversations.Tests.Browser;

/// <summary>The ops dashboard at <c>/ops</c> in real headless Chromium, during a run the fake model holds open.</summary>
[Collection(BrowserCollection.Name)]
public sealed class OpsDashboardTests(ChromiumFixture fixture)
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task The_dashboards_counters_move_during_a_run_and_a_threads_live_tokens_appear_in_it()
    {
        var firstHalf = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("first ", "second ", "third").HoldAfter(2, firstHalf.Task).WithDelay(TimeSpan.FromMilliseconds(20)));
        await using var app = GatewayApp.WithModel(model, OpsApiTests.Enabled);
        var page = await fixture.Chromium.NewPageAsync(app.Client.BaseAddress!);
        await page.GotoAsync("/ops");
        await Expect(page.Locator("#connection-status")).ToHaveTextAsync("Live");
        await Expect(page.Locator("#runs-started")).ToHaveTextAsync("0");
        await Expect(page.Locator("#runs-active")).ToHaveTextAsync("0");
        await Expect(page.Locator("#silos tbody")).ToContainTextAsync("Active");

        var threadId = await app.Client.CreateThreadAsync(cancellationToken: Guard);
        using (var sent = await app.Client.PostAsJsonAsync($"/threads/{threadId}/messages", new { content = "three words", wait = false }, Guard))
        {
            sent.EnsureSuccessStatusCode();
        }

        // While the model holds the run open, the counters have moved and the run is listed.
        await Expect(page.Locator("#runs-started")).ToHaveTextAsync("1");
        await Expect(page.Locator("#runs-active")).ToHaveTextAsync("1");
        var watch = page.Locator($"#active-runs button[data-thread-id=\"{threadId}\"]");
        await Expect(watch).ToBeVisibleAsync();
        await watch.ClickAsync();
        await Expect(page.Locator("#watch-thread")).ToHaveTextAsync(threadId);
        await Expect(page.Locator("#watch-output")).ToHaveTextAsync("first ");

        // The dashboard's watcher is not one of the thread's subscribers.
        var thread = await TestTimeouts.EventuallyAsync(
            async () => (await app.Client.GetFromJsonAsync<JsonElement>("/ops/snapshot", Guard)).GetProperty("gateways")[0].GetProperty("threads")
                .EnumerateArray().FirstOrDefault(t => t.GetProperty("threadId").GetString() == threadId),
            t => t.ValueKind == JsonValueKind.Object && t.GetProperty("watchers").GetInt32() == 1);
        Assert.Equal(0, thread.GetProperty("subscribers").GetInt32());

        await HeadlessChromium.ScreenshotAsync(page, "ops-during-run");
        firstHalf.SetResult();
        await Expect(page.Locator("#watch-output")).ToContainTextAsync("first second third");
        await Expect(page.Locator("#runs-completed")).ToHaveTextAsync("1");
        await Expect(page.Locator("#runs-active")).ToHaveTextAsync("0");
        await Expect(page.Locator("#ttft-p50")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+(\.\d+)? ms$"));
        await Expect(page.Locator("#completion-tokens")).Not.ToHaveTextAsync("0");
        await HeadlessChromium.ScreenshotAsync(page, "ops-after-run");

        // The official Orleans Dashboard is linked and served under the same rule.
        await page.GetByRole(AriaRole.Link, new() { Name = "Orleans Dashboard" }).ClickAsync();
        await Expect(page).ToHaveTitleAsync("Orleans Dashboard");
        Assert.EndsWith("/ops/orleans/", page.Url, StringComparison.Ordinal);
        // Its page has read the cluster through its API: the one silo is active.
        await Expect(page.Locator("body")).ToContainTextAsync("Active Silos1");
        await HeadlessChromium.ScreenshotAsync(page, "ops-orleans-dashboard");
    }
}
