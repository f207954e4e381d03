using System.Text.Json;
using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Tests.Storage;

/// <summary>Sample contracts for storage tests, and comparison through their stored JSON shape.</summary>
internal static class StorageSamples
{
    public static readonly DateTimeOffset T0 = new DateTimeOffset(2025, 3, 14, 9, 26, 53, 589, TimeSpan.FromHours(2)).AddTicks(7931);

    /// <summary>
    /// Asserts two values have the same <see cref="ContractJson"/> shape (records holding lists and dictionaries
    /// compare those by reference), through a JSON DOM: PostgreSQL's jsonb keeps values, not the order of keys.
    /// </summary>
    public static void AssertJsonEqual<T>(T expected, T actual)
    {
        var expectedJson = JsonSerializer.SerializeToNode(expected, ContractJson.Options);
        var actualJson = JsonSerializer.SerializeToNode(actual, ContractJson.Options);
        Assert.True(
            System.Text.Json.Nodes.JsonNode.DeepEquals(expectedJson, actualJson),
            $"Expected {expectedJson?.ToJsonString()}, read {actualJson?.ToJsonString()}.");
    }

    public static ThreadMessage UserMessage(int ordinal, string? runId = "run_1") =>
        new($"msg_{ordinal}", ordinal, MessageRoles.User, $"Question {ordinal}: ünïcødé ✓ \"quoted\"\nline two", T0.AddSeconds(ordinal))
        {
            RunId = runId,
        };

    public static ThreadMessage AssistantMessage(int ordinal, string status = MessageStatuses.Completed, string content = "Let me check.") =>
        new($"msg_{ordinal}", ordinal, MessageRoles.Assistant, content, T0.AddSeconds(ordinal))
        {
            RunId = "run_1",
            ToolCalls = [new ToolCallInfo("call_1", "weather", """{"city":"Lisbon"}"""), new ToolCallInfo("call_2", "time", "{}")],
            Status = status,
            FinishReason = "tool_calls",
            Usage = new Usage(120, 30, 150),
        };

    public static ThreadMessage ToolMessage(int ordinal) =>
        new($"msg_{ordinal}", ordinal, MessageRoles.Tool, """{"temperature":21.5}""", T0.AddSeconds(ordinal))
        {
            RunId = "run_1",
            ToolCallId = "call_1",
            Name = "weather",
        };

    /// <summary>A run started <paramref name="startedSecond"/> seconds after <see cref="T0"/>, in the given status.</summary>
    public static RunRecord Run(string threadId, string runId = "run_1", string status = RunStatuses.Running, int startedSecond = 1) =>
        new(runId, threadId, "default", "msg_1", T0.AddSeconds(startedSecond))
        {
            Status = status,
            EndedAt = status == RunStatuses.Running ? null : T0.AddSeconds(startedSecond + 8),
            Error = status == RunStatuses.Failed ? new RunError(RunErrorCodes.ModelError, "The model said no.") : null,
            Usage = status == RunStatuses.Running ? null : new Usage(200, 50, 250),
            StopReason = status == RunStatuses.Completed ? "stop" : null,
            StartSequence = 7,
        };

    /// <summary>One event of every kind <see cref="ThreadEvent"/> declares, with sequences 1, 2, 3, … .</summary>
    public static IReadOnlyList<ThreadEvent> OneOfEachEvent(string threadId, string runId = "run_1")
    {
        ThreadEvent[] events =
        [
            new RunStarted { ThreadId = threadId, RunId = runId, UserMessageId = "msg_1", Agent = "default", Model = "gpt-test" },
            new MessageStarted { ThreadId = threadId, RunId = runId, MessageId = "msg_2" },
            new TextDelta { ThreadId = threadId, RunId = runId, MessageId = "msg_2", Text = "Hel\"lo ✓\n" },
            new ToolCallStarted { ThreadId = threadId, RunId = runId, MessageId = "msg_2", CallId = "call_1", Name = "weather", Index = 0 },
            new ToolCallArgumentsDelta { ThreadId = threadId, RunId = runId, CallId = "call_1", Index = 0, Delta = """{"city":""" },
            new ToolCallCompleted
            {
                ThreadId = threadId, RunId = runId, CallId = "call_1", Name = "weather", Arguments = """{"city":"Lisbon"}""",
                Result = """{"temperature":21.5}""", DurationMs = 42,
            },
            new ToolCallFailed
            {
                ThreadId = threadId, RunId = runId, CallId = "call_2", Name = "time", Arguments = "{}", Error = "timed out", DurationMs = 5000,
            },
            new AgentStatusChanged
            {
                ThreadId = threadId, RunId = runId, Status = AgentStatuses.ToolsExecuted,
                Details = new Dictionary<string, object?>
                {
                    ["depth"] = 2, ["tools"] = new[] { "weather", "time" }, ["ok"] = false, ["note"] = null, ["ratio"] = 0.25,
                    ["nested"] = new Dictionary<string, object?> { ["a"] = "b" },
                },
            },
            new MessageCompleted
            {
                ThreadId = threadId, RunId = runId, MessageId = "msg_2", Content = "Hello", FinishReason = "tool_calls",
                ToolCalls = [new ToolCallInfo("call_1", "weather", """{"city":"Lisbon"}"""), new ToolCallInfo("call_2", "time", "{}")],
                Usage = new Usage(10, 5, 15), Status = MessageStatuses.Incomplete,
            },
            new RunCompleted { ThreadId = threadId, RunId = runId, StopReason = "max_depth", Usage = new Usage(100, 50, 150) },
            new RunFailed { ThreadId = threadId, RunId = runId, Error = new RunError(RunErrorCodes.ModelUnavailable, "down") },
            new RunCancelled { ThreadId = threadId, RunId = runId, Reason = "user asked", Usage = new Usage(1, 2, 3) },
            new RunQueued { ThreadId = threadId, RunId = "run_2", UserMessageId = "msg_9", Position = 2 },
            new RunSteered { ThreadId = threadId, RunId = runId, MessageId = "msg_8" },
            new RunRolledBack { ThreadId = threadId, RunId = runId, FromOrdinal = 3, RemovedMessages = 4 },
            new RunRequiresAction
            {
                ThreadId = threadId, RunId = runId, Calls = [new ToolCallInfo("call_3", "get_location", """{"precision":"city"}""")], Deadline = T0.AddMinutes(10),
            },
        ];
        return events.Select((e, i) => e with { Sequence = i + 1, CreatedAt = T0.AddMilliseconds(i * 137) }).ToArray();
    }

    /// <summary>Text deltas with the given sequences.</summary>
    public static IReadOnlyList<ThreadEvent> Deltas(string threadId, IEnumerable<long> sequences, string text = "x") =>
        sequences.Select(s => (ThreadEvent)new TextDelta
        {
            ThreadId = threadId, RunId = "run_1", MessageId = "msg_2", Text = $"{text}{s}", Sequence = s, CreatedAt = T0.AddSeconds(s),
        }).ToArray();
}
