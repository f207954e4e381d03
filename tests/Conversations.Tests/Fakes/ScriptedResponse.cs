using System.Text.Json.Nodes;

namespace Conversations.Tests.Fakes;

/// <summary>
/// One scripted answer of <see cref="FakeOpenAiServer"/> to one chat completions request. Immutable: every
/// <c>With…</c> method returns a changed copy, so a script can be built once and enqueued several times.
/// </summary>
/// <remarks>
/// <para>A streamed answer is a sequence of <c>chat.completion.chunk</c> events shaped like OpenAI's own:</para>
/// <list type="number">
/// <item>a role chunk, <c>delta: {"role":"assistant","content":""}</c> (<c>content: null</c> when there is no text);</item>
/// <item>one chunk per text delta, <c>delta: {"content": "…"}</c>;</item>
/// <item>per tool call a header chunk with <c>index</c>, <c>id</c>, <c>type:"function"</c>, <c>function.name</c> and
/// <c>function.arguments:""</c>, then one chunk per argument piece with only <c>index</c> and
/// <c>function.arguments</c>; several calls interleave round-robin by index (all headers, then every call's
/// first piece, then every call's second piece, …);</item>
/// <item>a finish chunk with an empty delta and <c>finish_reason</c> (<c>tool_calls</c> when there are calls,
/// else <c>stop</c>, unless <see cref="WithFinishReason"/> says otherwise);</item>
/// <item>when the request asked <c>stream_options.include_usage</c>, a usage chunk with <c>choices: []</c>
/// (and <c>usage: null</c> on every other chunk);</item>
/// <item><c>data: [DONE]</c>.</item>
/// </list>
/// <para>Chunk counts for <see cref="BreakAfter"/> and <see cref="HangAfter"/> start at the role chunk (chunk 1).</para>
/// <para>A request with <c>stream: false</c> gets one <c>chat.completion</c> object with the same content.</para>
/// </remarks>
public sealed record ScriptedResponse
{
    private ScriptedResponse()
    {
    }

    internal IReadOnlyList<string> TextDeltas { get; private init; } = [];

    internal IReadOnlyList<ScriptedToolCall> Calls { get; private init; } = [];

    internal IReadOnlyList<string>? RawChunks { get; private init; }

    internal string? FinishReason { get; private init; }

    internal (int Prompt, int Completion)? Usage { get; private init; }

    internal TimeSpan Delay { get; private init; }

    internal int? BreakAfterChunks { get; private init; }

    internal int? HangAfterChunks { get; private init; }

    internal int? ErrorStatus { get; private init; }

    internal JsonObject? ErrorBody { get; private init; }

    /// <summary>An assistant answer streamed as these text deltas, finishing <c>stop</c>.</summary>
    public static ScriptedResponse Text(params string[] deltas) => new() { TextDeltas = [.. deltas] };

    /// <summary>An assistant turn that calls these tools (no text), finishing <c>tool_calls</c>.</summary>
    public static ScriptedResponse ToolCalls(params ScriptedToolCall[] calls) => new() { Calls = [.. calls] };

    /// <summary>
    /// Exact control: each string is the JSON payload of one <c>data:</c> event, written verbatim (no role, finish or
    /// usage chunk is added), followed by <c>data: [DONE]</c>. Answers streaming requests only.
    /// </summary>
    public static ScriptedResponse Chunks(params string[] payloads) => new() { RawChunks = [.. payloads] };

    /// <summary>
    /// An HTTP error with OpenAI's error body <c>{"error":{"message","type","code"}}</c>. The type defaults to
    /// <c>server_error</c> for 5xx and <c>invalid_request_error</c> otherwise.
    /// </summary>
    public static ScriptedResponse Error(int status, string message, string? type = null, string? code = null) => new()
    {
        ErrorStatus = status,
        ErrorBody = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = message,
                ["type"] = type ?? (status >= 500 ? "server_error" : "invalid_request_error"),
                ["param"] = null,
                ["code"] = code,
            },
        },
    };

    /// <summary>A stream that sends the role chunk and then nothing until the client goes away (to be cancelled).</summary>
    public static ScriptedResponse Hang() => Text().HangAfter(1);

    /// <summary>Adds text deltas (sent before any tool calls), e.g. <c>ToolCalls(…).WithText("Let me look.")</c>.</summary>
    public ScriptedResponse WithText(params string[] deltas) => this with { TextDeltas = [.. TextDeltas, .. deltas] };

    /// <summary>Adds tool calls, e.g. <c>Text("Let me look.").WithToolCalls(…)</c>.</summary>
    public ScriptedResponse WithToolCalls(params ScriptedToolCall[] calls) => this with { Calls = [.. Calls, .. calls] };

    /// <summary>
    /// The usage reported (in the usage chunk when the request asked for it; always in a non-streamed answer).
    /// Without it the fake reports 10 prompt tokens and one completion token per text delta or argument piece.
    /// </summary>
    public ScriptedResponse WithUsage(int promptTokens, int completionTokens) => this with { Usage = (promptTokens, completionTokens) };

    /// <summary>The finish reason sent instead of the default (<c>length</c>, <c>content_filter</c>, or anything).</summary>
    public ScriptedResponse WithFinishReason(string finishReason) => this with { FinishReason = finishReason };

    /// <summary>Waits this long before each chunk.</summary>
    public ScriptedResponse WithDelay(TimeSpan perChunk) => this with { Delay = perChunk };

    /// <summary>
    /// Aborts the connection (<c>HttpContext.Abort()</c>, a TCP reset) after chunk <paramref name="chunks"/>, once the
    /// client has had 200 ms to read what was sent.
    /// </summary>
    public ScriptedResponse BreakAfter(int chunks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        return this with { BreakAfterChunks = chunks };
    }

    /// <summary>Stops sending after chunk <paramref name="chunks"/> and holds the response open until the client goes away.</summary>
    public ScriptedResponse HangAfter(int chunks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        return this with { HangAfterChunks = chunks };
    }

    /// <summary>
    /// Stops sending after chunk <paramref name="chunks"/> until <paramref name="release"/> completes, then sends the
    /// rest: the test decides when the answer goes on.
    /// </summary>
    public ScriptedResponse HoldAfter(int chunks, Task release)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        ArgumentNullException.ThrowIfNull(release);
        return this with { HoldAfterChunks = chunks, Release = release };
    }

    internal int? HoldAfterChunks { get; private init; }

    internal Task? Release { get; private init; }

    internal bool IsError => ErrorStatus is not null;

    /// <summary>The <c>data:</c> payloads of a streamed answer, without the final <c>[DONE]</c>.</summary>
    internal IReadOnlyList<string> RenderChunks(string completionId, string model, bool includeUsage)
    {
        if (RawChunks is not null)
        {
            return RawChunks;
        }

        var chunks = new List<JsonObject>
        {
            Chunk(new JsonObject { ["role"] = "assistant", ["content"] = TextDeltas.Count > 0 || Calls.Count == 0 ? "" : null }),
        };
        chunks.AddRange(TextDeltas.Select(text => Chunk(new JsonObject { ["content"] = text })));

        chunks.AddRange(Calls.Select((call, index) => Chunk(ToolCallDelta(new JsonObject
        {
            ["index"] = index,
            ["id"] = call.Id,
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = "" },
        }))));
        var rounds = Calls.Count == 0 ? 0 : Calls.Max(call => call.ArgumentPieces.Length);
        for (var round = 0; round < rounds; round++)
        {
            for (var index = 0; index < Calls.Count; index++)
            {
                if (round < Calls[index].ArgumentPieces.Length)
                {
                    chunks.Add(Chunk(ToolCallDelta(new JsonObject
                    {
                        ["index"] = index,
                        ["function"] = new JsonObject { ["arguments"] = Calls[index].ArgumentPieces[round] },
                    })));
                }
            }
        }

        chunks.Add(Chunk(new JsonObject(), EffectiveFinishReason));

        if (includeUsage)
        {
            foreach (var chunk in chunks)
            {
                chunk["usage"] = null;
            }

            var usageChunk = Envelope("chat.completion.chunk");
            usageChunk["choices"] = new JsonArray();
            usageChunk["usage"] = UsageJson();
            chunks.Add(usageChunk);
        }

        return [.. chunks.Select(chunk => chunk.ToJsonString())];

        JsonObject Chunk(JsonObject delta, string? finishReason = null)
        {
            var chunk = Envelope("chat.completion.chunk");
            chunk["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["delta"] = delta,
                ["logprobs"] = null,
                ["finish_reason"] = finishReason,
            });
            return chunk;
        }

        static JsonObject ToolCallDelta(JsonObject call) => new() { ["tool_calls"] = new JsonArray(call) };

        JsonObject Envelope(string kind) => new()
        {
            ["id"] = completionId,
            ["object"] = kind,
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["system_fingerprint"] = "fp_fake",
        };
    }

    /// <summary>The <c>chat.completion</c> object of a non-streamed answer.</summary>
    internal JsonObject RenderCompletion(string completionId, string model)
    {
        var message = new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = TextDeltas.Count > 0 || Calls.Count == 0 ? string.Concat(TextDeltas) : null,
            ["refusal"] = null,
        };
        if (Calls.Count > 0)
        {
            message["tool_calls"] = new JsonArray([.. Calls.Select(call => (JsonNode)new JsonObject
            {
                ["id"] = call.Id,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = string.Concat(call.ArgumentPieces) },
            })]);
        }

        return new JsonObject
        {
            ["id"] = completionId,
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["system_fingerprint"] = "fp_fake",
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["logprobs"] = null,
                ["finish_reason"] = EffectiveFinishReason,
            }),
            ["usage"] = UsageJson(),
        };
    }

    private string EffectiveFinishReason => FinishReason ?? (Calls.Count > 0 ? "tool_calls" : "stop");

    private JsonObject UsageJson()
    {
        var (prompt, completion) = Usage ?? (10, TextDeltas.Count + Calls.Sum(call => call.ArgumentPieces.Length));
        return new JsonObject
        {
            ["prompt_tokens"] = prompt,
            ["completion_tokens"] = completion,
            ["total_tokens"] = prompt + completion,
        };
    }
}

/// <summary>A tool call the fake model makes; its arguments arrive in these pieces (concatenated: a JSON object).</summary>
public sealed record ScriptedToolCall(string Id, string Name, params string[] ArgumentPieces);
