using System.Text.Json;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Models;
using Conversations.Grains.Models.Demo;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Time;
using Conversations.Tests.Tools;

namespace Conversations.Tests.Models.Demo;

public sealed class DemoChatModelTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 22, 5, 3, 0, TimeSpan.Zero); // 14:03 Sunday in Tokyo

    private readonly DemoChatModel _model = new(TimeProvider.System, TimeSpan.Zero);
    private readonly CalculateTool _calculate = new();
    private readonly GetTimeTool _getTime = new(new FixedTimeProvider(Now));

    private ToolDefinition[] AllTools => [_calculate.Definition, _getTime.Definition];

    [Fact]
    public void Is_named_demo_and_streams()
    {
        Assert.Equal("demo", _model.Name);
        Assert.True(_model.SupportsStreaming);
    }

    [Fact]
    public async Task Plain_chat_gets_a_streamed_reply_explaining_how_to_configure_a_real_model()
    {
        var updates = await StreamAsync(Request(AllTools, User("Tell me a joke about   penguins\nplease")));

        var deltas = updates.OfType<ModelTextDelta>().ToList();
        Assert.True(deltas.Count > 10, "the reply should arrive word by word");
        Assert.All(deltas, d => Assert.False(string.IsNullOrEmpty(d.Text)));
        var text = string.Concat(deltas.Select(d => d.Text));
        Assert.StartsWith("Hello! I'm the built-in demo model", text, StringComparison.Ordinal);
        Assert.Contains("You said: \"Tell me a joke about penguins please\".", text, StringComparison.Ordinal);
        Assert.Contains("OPENAI_API_KEY", text, StringComparison.Ordinal);
        Assert.Contains("OPENAI_BASE_URL", text, StringComparison.Ordinal);
        Assert.Contains("OPENAI_MODEL", text, StringComparison.Ordinal);
        Assert.Contains("calculate", text, StringComparison.Ordinal);
        Assert.Empty(updates.OfType<ModelToolCallDelta>());

        var finished = Assert.IsType<ModelFinished>(updates[^1]);
        Assert.Equal("stop", finished.FinishReason);
        AssertConsistent(finished.Usage);
        Assert.Equal(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length, finished.Usage!.CompletionTokens);
    }

    [Fact]
    public async Task Text_deltas_concatenate_to_the_reply_with_its_whitespace_intact()
    {
        var updates = await StreamAsync(Request([], User("hi")));

        var text = string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text));
        Assert.DoesNotContain("  ", text, StringComparison.Ordinal);
        Assert.Equal(text.Split(' ').Length, updates.OfType<ModelTextDelta>().Count());
        Assert.DoesNotContain("calculate", text, StringComparison.Ordinal); // no tools offered, none advertised
    }

    [Fact]
    public async Task Long_messages_are_quoted_briefly()
    {
        var updates = await StreamAsync(Request([], User(new string('a', 500))));

        var text = string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text));
        Assert.Contains(new string('a', 80) + "…\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('a', 81), text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("what is 17 * 23?", "17 * 23")]
    [InlineData("compute (2+3)^2", "(2+3)^2")]
    [InlineData("sqrt(16) + 1", "sqrt(16) + 1")]
    [InlineData("What's max(3, 9) - 2, please", "max(3, 9) - 2")]
    [InlineData("(that is 2 + 2)", "2 + 2")]
    [InlineData("how much is 1/0", "1/0")]
    [InlineData("what is 2 ^ -1.5e2", "2 ^ -1.5e2")]
    public async Task Arithmetic_in_the_user_message_becomes_a_streamed_calculate_call(string message, string expression)
    {
        var updates = await StreamAsync(Request(AllTools, User(message)));

        var call = Assert.Single(ToolCalls(updates));
        Assert.Equal("calculate", call.Name);
        Assert.Equal(expression, ParseArgument(call.Arguments, "expression"));

        Assert.Empty(updates.OfType<ModelTextDelta>());
        var finished = Assert.IsType<ModelFinished>(updates[^1]);
        Assert.Equal("tool_calls", finished.FinishReason);
        AssertConsistent(finished.Usage);
    }

    [Fact]
    public async Task A_tool_call_starts_with_id_and_name_then_streams_its_arguments_in_pieces()
    {
        var updates = await StreamAsync(Request(AllTools, User("what is 17 * 23?")));

        var deltas = updates.OfType<ModelToolCallDelta>().ToList();
        var first = deltas[0];
        Assert.Equal(0, first.Index);
        Assert.Matches("^call_[0-9a-f]{24}$", first.Id);
        Assert.Equal("calculate", first.Name);
        Assert.Null(first.ArgumentsDelta);

        var pieces = deltas.Skip(1).ToList();
        Assert.InRange(pieces.Count, 2, 3);
        Assert.All(pieces, p => Assert.Equal((0, (string?)null, (string?)null), (p.Index, p.Id, p.Name)));
        var arguments = string.Concat(pieces.Select(p => p.ArgumentsDelta));
        Assert.Equal("""{"expression":"17 * 23"}""", arguments);
    }

    [Theory]
    [InlineData("hello 2 you")]
    [InlineData("I have 3 apples and 2 pears")]
    [InlineData("it is -5 degrees")]
    [InlineData("see you on 2024-01-15")]
    [InlineData("version 1.2.3 is out")]
    [InlineData("e is a letter")]
    [InlineData("what is 5 +")]
    [InlineData("1e-5")]
    public async Task Plain_text_with_numbers_is_not_mistaken_for_arithmetic(string message)
    {
        var updates = await StreamAsync(Request(AllTools, User(message)));

        Assert.Empty(updates.OfType<ModelToolCallDelta>());
        Assert.Equal("stop", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
    }

    [Fact]
    public async Task Arithmetic_gets_a_text_reply_when_the_calculate_tool_is_not_offered()
    {
        var updates = await StreamAsync(Request([_getTime.Definition], User("what is 17 * 23?")));

        Assert.Empty(updates.OfType<ModelToolCallDelta>());
        Assert.Contains("demo model", string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_answer_after_a_calculate_result_states_the_computed_value()
    {
        var question = User("what is 17 * 23?");
        var call = Assert.Single(ToolCalls(await StreamAsync(Request(AllTools, question))));
        var result = await _calculate.InvokeAsync(Json(call.Arguments), TestContext.Current.CancellationToken);

        var updates = await StreamAsync(Request(AllTools, question, Assistant(call), ToolMessage(call, result)));

        var deltas = updates.OfType<ModelTextDelta>().ToList();
        Assert.True(deltas.Count > 1, "the answer should be streamed in pieces");
        Assert.Equal("17 * 23 = 391.", string.Concat(deltas.Select(d => d.Text)));
        var finished = Assert.IsType<ModelFinished>(updates[^1]);
        Assert.Equal("stop", finished.FinishReason);
        AssertConsistent(finished.Usage);
    }

    [Theory]
    [InlineData("Error: Division by zero at position 2", "I couldn't compute that: Division by zero at position 2.")]
    [InlineData("error:Unexpected end of expression.", "I couldn't compute that: Unexpected end of expression.")]
    [InlineData("Division by zero at position 2", "I couldn't compute that: Division by zero at position 2.")]
    public async Task A_failed_calculate_result_is_reported_with_its_error(string content, string answer)
    {
        var call = new StreamedCall(0, "call_1", "calculate", """{"expression":"1/0"}""");

        var updates = await StreamAsync(Request(AllTools, User("1/0"), Assistant(call), ToolMessage(call, content)));

        Assert.Equal(answer, string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Fact]
    public async Task A_real_calculate_failure_reads_back_as_an_error()
    {
        var call = new StreamedCall(0, "call_1", "calculate", """{"expression":"1/0"}""");
        var error = await Assert.ThrowsAsync<ToolException>(
            async () => await _calculate.InvokeAsync(Json(call.Arguments), TestContext.Current.CancellationToken));

        var updates = await StreamAsync(
            Request(AllTools, User("1/0"), Assistant(call), ToolMessage(call, ToolResults.FormatError(error.Message))));

        Assert.Equal(
            "I couldn't compute that: Division by zero at position 2.",
            string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Theory]
    [InlineData("what time is it in Tokyo?", "Asia/Tokyo")]
    [InlineData("time in Europe/Paris", "Europe/Paris")]
    [InlineData("What's the time in new   york", "America/New_York")]
    [InlineData("current time in Buenos Aires", "America/Argentina/Buenos_Aires")]
    [InlineData("what time is it?", "UTC")]
    [InlineData("what time is it in UTC", "UTC")]
    public async Task A_time_question_becomes_a_get_time_call_with_the_zone(string message, string zone)
    {
        var updates = await StreamAsync(Request(AllTools, User(message)));

        var call = Assert.Single(ToolCalls(updates));
        Assert.Equal("get_time", call.Name);
        Assert.Equal(zone, ParseArgument(call.Arguments, "timezone"));
        Assert.Equal("tool_calls", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
    }

    [Fact]
    public async Task The_answer_after_a_get_time_result_gives_the_local_time_and_day()
    {
        var question = User("what time is it in Tokyo?");
        var call = Assert.Single(ToolCalls(await StreamAsync(Request(AllTools, question))));
        var result = await _getTime.InvokeAsync(Json(call.Arguments), TestContext.Current.CancellationToken);

        var updates = await StreamAsync(Request(AllTools, question, Assistant(call), ToolMessage(call, result)));

        Assert.Equal(
            "The time in Asia/Tokyo is 14:03 (Sunday).",
            string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Fact]
    public async Task A_failed_get_time_result_is_reported_with_its_error()
    {
        var call = new StreamedCall(0, "call_1", "get_time", """{"timezone":"Mars/Base"}""");
        var content = ToolResults.FormatError("Unknown time zone 'Mars/Base'. Use an IANA id such as 'Europe/Paris'.");

        var updates = await StreamAsync(Request(AllTools, User("time in Mars/Base"), Assistant(call), ToolMessage(call, content)));

        Assert.Equal(
            "I couldn't get the time: Unknown time zone 'Mars/Base'. Use an IANA id such as 'Europe/Paris'.",
            string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Fact]
    public async Task Asking_for_both_streams_two_interleaved_tool_calls_with_distinct_indexes_and_ids()
    {
        var updates = await StreamAsync(Request(AllTools, User("What is 17 * 23, and what time is it in London?")));

        var calls = ToolCalls(updates);
        Assert.Equal(2, calls.Count);
        Assert.Equal([0, 1], calls.Select(c => c.Index));
        Assert.NotEqual(calls[0].Id, calls[1].Id);
        Assert.Equal(("calculate", "17 * 23"), (calls[0].Name, ParseArgument(calls[0].Arguments, "expression")));
        Assert.Equal(("get_time", "Europe/London"), (calls[1].Name, ParseArgument(calls[1].Arguments, "timezone")));

        // Interleaved: call 1 starts before call 0's arguments are complete.
        var deltas = updates.OfType<ModelToolCallDelta>().ToList();
        var call1Starts = deltas.FindIndex(d => d.Index == 1);
        var call0Ends = deltas.FindLastIndex(d => d.Index == 0);
        Assert.True(call1Starts < call0Ends, "the two calls' pieces should interleave");
        Assert.Equal(2, deltas.Count(d => d.Id is not null));
        Assert.Equal("tool_calls", Assert.IsType<ModelFinished>(updates[^1]).FinishReason);
    }

    [Fact]
    public async Task The_answer_after_two_tool_results_covers_both()
    {
        var question = User("What is 17 * 23, and what time is it in Tokyo?");
        var calls = ToolCalls(await StreamAsync(Request(AllTools, question)));
        var calculateResult = await _calculate.InvokeAsync(Json(calls[0].Arguments), TestContext.Current.CancellationToken);
        var timeResult = await _getTime.InvokeAsync(Json(calls[1].Arguments), TestContext.Current.CancellationToken);

        var updates = await StreamAsync(Request(
            AllTools, question, Assistant([.. calls]), ToolMessage(calls[0], calculateResult), ToolMessage(calls[1], timeResult)));

        Assert.Equal(
            "17 * 23 = 391. The time in Asia/Tokyo is 14:03 (Sunday).",
            string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Fact]
    public async Task Only_the_latest_turn_of_tool_results_is_answered()
    {
        var old = new StreamedCall(0, "call_old", "calculate", """{"expression":"1 + 1"}""");
        var latest = new StreamedCall(0, "call_new", "calculate", """{"expression":"17 * 23"}""");

        var updates = await StreamAsync(Request(
            AllTools,
            User("1 + 1"), Assistant(old), ToolMessage(old, "2"), new ThreadMessage("msg_a", 4, MessageRoles.Assistant, "1 + 1 = 2.", Now),
            User("17 * 23"), Assistant(latest), ToolMessage(latest, "391")));

        Assert.Equal("17 * 23 = 391.", string.Concat(updates.OfType<ModelTextDelta>().Select(d => d.Text)));
    }

    [Fact]
    public async Task Cancellation_stops_the_stream_between_pieces()
    {
        using var cancellation = new CancellationTokenSource();
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in _model.StreamAsync(Request(AllTools, User("hello")), cancellation.Token))
            {
                received++;
                await cancellation.CancelAsync();
            }
        });

        Assert.Equal(1, received);
    }

    [Fact]
    public async Task Cancellation_interrupts_the_pause_between_tokens()
    {
        var slow = new DemoChatModel(TimeProvider.System, TimeSpan.FromMinutes(5));
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancellation.CancelAfter(TimeSpan.FromMilliseconds(100));
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in slow.StreamAsync(Request(AllTools, User("hello")), cancellation.Token))
            {
                received++;
            }
        });

        Assert.Equal(1, received);
    }

    [Fact]
    public async Task The_pause_between_pieces_runs_on_the_given_clock()
    {
        var clock = new ManualTimeProvider();
        var paced = new DemoChatModel(clock, TimeSpan.FromSeconds(1));
        await using var stream = paced.StreamAsync(Request([], User("hi")), TestContext.Current.CancellationToken)
            .GetAsyncEnumerator(TestContext.Current.CancellationToken);

        Assert.True(await stream.MoveNextAsync()); // the first piece comes at once
        var second = stream.MoveNextAsync().AsTask();
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(second.IsCompleted, "the second piece waits for the clock");

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await second.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
    }

    [Fact]
    public void A_negative_delay_is_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoChatModel(TimeProvider.System, TimeSpan.FromSeconds(-1)));

    // ---- helpers ----

    private sealed record StreamedCall(int Index, string Id, string Name, string Arguments);

    private static ModelRequest Request(IReadOnlyList<ToolDefinition> tools, params ThreadMessage[] messages) =>
        new("You are helpful.", [.. messages.Select((m, i) => m with { Ordinal = i + 1 })], tools);

    private static ThreadMessage User(string text) => new("msg_u", 0, MessageRoles.User, text, Now);

    private static ThreadMessage Assistant(params StreamedCall[] calls) =>
        new("msg_a", 0, MessageRoles.Assistant, "", Now)
        {
            ToolCalls = [.. calls.Select(c => new ToolCallInfo(c.Id, c.Name, c.Arguments))],
            FinishReason = "tool_calls",
        };

    private static ThreadMessage ToolMessage(StreamedCall call, string content) =>
        new("msg_t", 0, MessageRoles.Tool, content, Now) { ToolCallId = call.Id, Name = call.Name };

    private async Task<List<ModelUpdate>> StreamAsync(ModelRequest request)
    {
        var updates = new List<ModelUpdate>();
        await foreach (var update in _model.StreamAsync(request, TestContext.Current.CancellationToken))
        {
            updates.Add(update);
        }

        Assert.Single(updates.OfType<ModelFinished>());
        return updates;
    }

    /// <summary>Assembles tool calls from their pieces the way the agent loop must: by index.</summary>
    private static List<StreamedCall> ToolCalls(List<ModelUpdate> updates) =>
        [.. updates.OfType<ModelToolCallDelta>()
            .GroupBy(d => d.Index)
            .OrderBy(g => g.Key)
            .Select(g => new StreamedCall(
                g.Key,
                Assert.Single(g, d => d.Id is not null).Id!,
                Assert.Single(g, d => d.Name is not null).Name!,
                string.Concat(g.Select(d => d.ArgumentsDelta))))];

    private static string? ParseArgument(string arguments, string name)
    {
        using var json = JsonDocument.Parse(arguments);
        return json.RootElement.GetProperty(name).GetString();
    }

    private static JsonElement Json(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static void AssertConsistent(Usage? usage)
    {
        Assert.NotNull(usage);
        Assert.True(usage.PromptTokens > 0);
        Assert.True(usage.CompletionTokens > 0);
        Assert.Equal(usage.PromptTokens + usage.CompletionTokens, usage.TotalTokens);
    }
}
