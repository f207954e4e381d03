using System.Net;
using System.Text.RegularExpressions;
using Conversations.Tests.Cluster;
using Conversations.Tests.Fakes;
using Conversations.Tests.Gateway;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Conversations.Tests.Browser;

/// <summary>The chat page at <c>/</c> in real headless Chromium against a real gateway and the fake model.</summary>
[Collection(BrowserCollection.Name)]
public sealed partial class ChatPageTests(ChromiumFixture fixture)
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    private HeadlessChromium Chromium => fixture.Chromium;

    [Fact]
    public async Task The_chat_page_streams_a_reply_with_a_tool_call()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(
            ScriptedResponse.ToolCalls(new ScriptedToolCall("call_1", "calculate", "{\"expression\":", "\"17*23\"}")),
            ScriptedResponse.Text("17 × 23 ", "is ", "391.").WithDelay(TimeSpan.FromMilliseconds(20)));
        await using var app = GatewayApp.WithModel(model);
        var page = await Chromium.NewPageAsync(app.Client.BaseAddress!);
        await page.GotoAsync("/");

        await page.GetByLabel("Message", new() { Exact = true }).FillAsync("what is 17 * 23?");
        await page.GetByLabel("Message", new() { Exact = true }).PressAsync("Enter");

        var user = page.Locator(".message[data-role=user] .text");
        await Expect(user).ToHaveTextAsync("what is 17 * 23?");
        var call = page.Locator(".tool-call[data-call-id=call_1]");
        await Expect(call.Locator(".tool-name")).ToHaveTextAsync("calculate");
        await Expect(call.Locator(".tool-args")).ToHaveTextAsync("{\"expression\":\"17*23\"}");
        await Expect(call.Locator(".tool-result")).ToHaveTextAsync("391");
        await Expect(call.Locator(".tool-duration")).ToHaveTextAsync(DurationPattern());
        var answer = page.Locator(".message[data-role=assistant]").Last;
        await Expect(answer.Locator(".text")).ToHaveTextAsync("17 × 23 is 391.");
        await Expect(answer).ToHaveAttributeAsync("data-status", "completed");
        await Expect(page.Locator(".message[data-resynced]")).ToHaveCountAsync(0);
        await Expect(page.Locator("#run-status")).ToHaveTextAsync("completed");
        await Expect(page.Locator("#cancel")).ToBeDisabledAsync();
        await HeadlessChromium.ScreenshotAsync(page, "chat-tool-call");
    }

    [Fact]
    public async Task Two_pages_on_one_thread_both_see_every_token()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string[] deltas = ["One ", "two ", "three ", "four ", "five ", "six."];
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        // Role chunk and three deltas, then the rest once the test has seen both pages show the first half.
        model.Enqueue(ScriptedResponse.Text(deltas).HoldAfter(4, release.Task).WithDelay(TimeSpan.FromMilliseconds(10)));
        await using var app = GatewayApp.WithModel(model);
        var first = await Chromium.NewPageAsync(app.Client.BaseAddress!);
        await first.GotoAsync("/");
        await first.GetByRole(AriaRole.Button, new() { Name = "New thread" }).ClickAsync();
        await Expect(first.Locator("#thread-id")).ToHaveTextAsync(ThreadIdPattern());
        var threadId = await first.Locator("#thread-id").TextContentAsync();

        var second = await Chromium.NewPageAsync(app.Client.BaseAddress!);
        await second.GotoAsync($"/#thread={threadId}");
        await Expect(second.Locator("#thread-id")).ToHaveTextAsync(threadId!);
        await Expect(first.Locator("#connection-status")).ToHaveTextAsync("Live");
        await Expect(second.Locator("#connection-status")).ToHaveTextAsync("Live");

        await first.GetByLabel("Message", new() { Exact = true }).FillAsync("count to six");
        await first.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        // Mid-run, both show the same first half live; then both the whole answer, exactly once.
        foreach (var page in new[] { first, second })
        {
            await Expect(page.Locator(".message[data-role=assistant] .text")).ToHaveTextAsync("One two three ");
            await Expect(page.Locator(".message[data-role=user] .text")).ToHaveTextAsync("count to six");
            await Expect(page.Locator("#cancel")).ToBeEnabledAsync();
        }

        await HeadlessChromium.ScreenshotAsync(second, "chat-second-tab-mid-run");
        release.SetResult();
        foreach (var page in new[] { first, second })
        {
            await Expect(page.Locator(".message[data-role=assistant] .text")).ToHaveTextAsync(string.Concat(deltas));
            await Expect(page.Locator(".message[data-role=assistant]")).ToHaveAttributeAsync("data-status", "completed");
            await Expect(page.Locator(".message[data-resynced]")).ToHaveCountAsync(0);
        }
    }

    [Fact]
    public async Task A_reload_mid_run_resumes_with_no_duplicate_text()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("alpha ", "beta ", "gamma ", "delta").HoldAfter(3, release.Task).WithDelay(TimeSpan.FromMilliseconds(10)));
        await using var app = GatewayApp.WithModel(model);
        var page = await Chromium.NewPageAsync(app.Client.BaseAddress!);
        await page.GotoAsync("/");
        await page.GetByLabel("Message", new() { Exact = true }).FillAsync("four words");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        var answer = page.Locator(".message[data-role=assistant] .text");
        await Expect(answer).ToHaveTextAsync("alpha beta ");

        // The thread is in the address: the reloaded page reads the history and replays the active run.
        Assert.Matches(ThreadHashPattern(), new Uri(page.Url).Fragment);
        await page.ReloadAsync();
        await Expect(answer).ToHaveTextAsync("alpha beta ");
        await Expect(page.Locator("#run-status")).ToHaveTextAsync(RunningPattern());
        release.SetResult();

        await Expect(answer).ToHaveTextAsync("alpha beta gamma delta");
        await Expect(page.Locator(".message[data-role=assistant]")).ToHaveCountAsync(1);
        await Expect(page.Locator(".message[data-role=user]")).ToHaveCountAsync(1);
        await Expect(page.Locator(".message[data-role=user] .text")).ToHaveTextAsync("four words");
        await Expect(page.Locator(".message[data-role=assistant]")).ToHaveAttributeAsync("data-status", "completed");
        await Expect(page.Locator(".message[data-resynced]")).ToHaveCountAsync(0);
        await HeadlessChromium.ScreenshotAsync(page, "chat-after-reload");
    }

    [Fact]
    public async Task After_a_dropped_connection_the_page_resumes_with_every_token_once()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("alpha ", "beta ", "gamma ", "delta").HoldAfter(3, release.Task));
        await using var app = GatewayApp.WithModel(model);
        // The browser reaches the gateway through a relay the test can cut, as a network outage would.
        var gateway = app.Client.BaseAddress!;
        await using var relay = new TcpRelay(new IPEndPoint(IPAddress.Loopback, gateway.Port));
        var page = await Chromium.NewPageAsync(new Uri($"http://127.0.0.1:{relay.Port}/"));
        var resumedAfter = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/events", StringComparison.Ordinal) && request.Headers.TryGetValue("last-event-id", out var id))
            {
                resumedAfter.Enqueue(id);
            }
        };
        await page.GotoAsync("/");
        await page.GetByLabel("Message", new() { Exact = true }).FillAsync("four words");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        var answer = page.Locator(".message[data-role=assistant] .text");
        await Expect(answer).ToHaveTextAsync("alpha beta ");
        var threadId = await page.Locator("#thread-id").TextContentAsync();

        await relay.CutAsync();
        await Expect(page.Locator("#connection-status")).ToContainTextAsync("Reconnecting");
        // The run goes on and ends while the page is cut off.
        release.SetResult();
        var thread = await TestTimeouts.EventuallyAsync(
            () => app.Client.GetFromJsonAsync<System.Text.Json.JsonElement>($"/threads/{threadId}", Guard),
            t => !t.TryGetProperty("activeRunId", out _));
        Assert.False(thread.TryGetProperty("activeRunId", out _), "the run did not end");

        relay.Restore();
        await Expect(page.Locator("#connection-status")).ToHaveTextAsync("Live");
        await Expect(answer).ToHaveTextAsync("alpha beta gamma delta");
        await Expect(page.Locator(".message[data-role=assistant]")).ToHaveCountAsync(1);
        await Expect(page.Locator("#run-status")).ToHaveTextAsync("completed");
        // It asked to resume after the last event it had shown.
        Assert.Contains(resumedAfter, id => long.Parse(id, System.Globalization.CultureInfo.InvariantCulture) > 0);
        // Every delta was shown once: their concatenation is the stored message.
        await Expect(page.Locator(".message[data-role=assistant]")).ToHaveAttributeAsync("data-status", "completed");
        await Expect(page.Locator(".message[data-resynced]")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_run_can_be_cancelled_from_the_page()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Guard);
        model.Enqueue(ScriptedResponse.Text("Thinking ", "about it").HangAfter(2));
        await using var app = GatewayApp.WithModel(model);
        var page = await Chromium.NewPageAsync(app.Client.BaseAddress!);
        await page.GotoAsync("/");
        await page.GetByLabel("Message", new() { Exact = true }).FillAsync("take your time");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator(".message[data-role=assistant] .text")).ToHaveTextAsync("Thinking ");

        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel run" }).ClickAsync();
        await Expect(page.Locator("#run-status")).ToHaveTextAsync("cancelled");
        await Expect(page.Locator(".run-note[data-kind=cancelled]")).ToBeVisibleAsync();
        await Expect(page.Locator("#cancel")).ToBeDisabledAsync();
    }

    [Fact]
    public async Task On_a_phone_sized_viewport_the_page_fits_and_every_control_has_a_label()
    {
        await using var app = new GatewayApp();
        var page = await Chromium.NewPageAsync(app.Client.BaseAddress!, new ViewportSize { Width = 390, Height = 844 });
        await page.GotoAsync("/");

        // Nothing wider than the screen: no sideways scrolling.
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways on a phone");
        foreach (var label in new[] { "Message", "Agent for new messages", "Open a thread by id" })
        {
            await Expect(page.GetByLabel(label, new() { Exact = true })).ToBeVisibleAsync();
        }

        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send" })).ToBeVisibleAsync();
        // The agents come from the API; the default one is there.
        await Expect(page.Locator("#agent option")).Not.ToHaveCountAsync(0);
        await Expect(page.Locator("#agent")).ToContainTextAsync("default");

        // Keyboard: the message box takes focus and Enter sends (a thread is created for the first message).
        await page.GetByLabel("Message", new() { Exact = true }).FocusAsync();
        await page.Keyboard.TypeAsync("hello");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator(".message[data-role=assistant]")).ToHaveAttributeAsync("data-status", "completed");
        await Expect(page.Locator("#thread-id")).ToHaveTextAsync(ThreadIdPattern());
        await HeadlessChromium.ScreenshotAsync(page, "chat-phone");
    }

    [GeneratedRegex(@"^\d+ ms$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^thread_\S+$")]
    private static partial Regex ThreadIdPattern();

    [GeneratedRegex(@"^#thread=\S+$")]
    private static partial Regex ThreadHashPattern();

    [GeneratedRegex(@"^running")]
    private static partial Regex RunningPattern();
}
