using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;
using Conversations.Grains.Tools.Time;

namespace Conversations.Grains.Models.Demo;

/// <summary>
/// The built-in offline model, <c>demo</c>: enough of a model to drive the agent loop end to end without an API key.
/// It streams word by word, calls <c>calculate</c> for arithmetic and <c>get_time</c> for time questions (both in one
/// turn when asked both), answers from their results, and otherwise explains how to configure a real model.
/// </summary>
/// <remarks>
/// <para>
/// A tool message counts as a failure when <see cref="ToolResults.TryGetError"/> says so (content starting with
/// <c>Error</c>), and also when its content is not the tool's success shape: a number for <c>calculate</c>, a JSON
/// object with <c>localTime</c> for <c>get_time</c>. So raw <see cref="ToolException"/> messages read as failures too.
/// </para>
/// <para>Usage is estimated as one token per whitespace-separated word.</para>
/// </remarks>
public sealed partial class DemoChatModel : IChatModel
{
    /// <summary>The model's name.</summary>
    public const string ModelName = "demo";

    /// <summary>The pause between streamed pieces when none is given: slow enough to watch tokens arrive in curl.</summary>
    public static readonly TimeSpan DefaultTokenDelay = TimeSpan.FromMilliseconds(25);

    private const int MaxQuoteLength = 80;

    private static readonly JsonWriterOptions ArgumentsWriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // "17 + 2", not "17 \u002B 2", in the streamed arguments
    };

    /// <summary>Well-known places and their IANA zones; keys are lower case, words separated by one space.</summary>
    private static readonly Dictionary<string, string> Cities = new(StringComparer.Ordinal)
    {
        ["tokyo"] = "Asia/Tokyo",
        ["osaka"] = "Asia/Tokyo",
        ["seoul"] = "Asia/Seoul",
        ["beijing"] = "Asia/Shanghai",
        ["shanghai"] = "Asia/Shanghai",
        ["hong kong"] = "Asia/Hong_Kong",
        ["singapore"] = "Asia/Singapore",
        ["mumbai"] = "Asia/Kolkata",
        ["delhi"] = "Asia/Kolkata",
        ["new delhi"] = "Asia/Kolkata",
        ["bangalore"] = "Asia/Kolkata",
        ["dubai"] = "Asia/Dubai",
        ["moscow"] = "Europe/Moscow",
        ["istanbul"] = "Europe/Istanbul",
        ["london"] = "Europe/London",
        ["dublin"] = "Europe/Dublin",
        ["lisbon"] = "Europe/Lisbon",
        ["paris"] = "Europe/Paris",
        ["berlin"] = "Europe/Berlin",
        ["madrid"] = "Europe/Madrid",
        ["rome"] = "Europe/Rome",
        ["amsterdam"] = "Europe/Amsterdam",
        ["zurich"] = "Europe/Zurich",
        ["vienna"] = "Europe/Vienna",
        ["stockholm"] = "Europe/Stockholm",
        ["cairo"] = "Africa/Cairo",
        ["lagos"] = "Africa/Lagos",
        ["johannesburg"] = "Africa/Johannesburg",
        ["new york"] = "America/New_York",
        ["boston"] = "America/New_York",
        ["toronto"] = "America/Toronto",
        ["chicago"] = "America/Chicago",
        ["denver"] = "America/Denver",
        ["los angeles"] = "America/Los_Angeles",
        ["san francisco"] = "America/Los_Angeles",
        ["seattle"] = "America/Los_Angeles",
        ["mexico city"] = "America/Mexico_City",
        ["sao paulo"] = "America/Sao_Paulo",
        ["são paulo"] = "America/Sao_Paulo",
        ["buenos aires"] = "America/Argentina/Buenos_Aires",
        ["honolulu"] = "Pacific/Honolulu",
        ["sydney"] = "Australia/Sydney",
        ["melbourne"] = "Australia/Melbourne",
        ["auckland"] = "Pacific/Auckland",
    };

    private static readonly Regex CityPattern = new(
        @"\b(?:" + string.Join('|', Cities.Keys.OrderByDescending(k => k.Length).Select(k => Regex.Escape(k).Replace(@"\ ", @"\s+", StringComparison.Ordinal))) + @")\b",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly HashSet<string> ExpressionNames = new(
        ExpressionEvaluator.FunctionNames.Concat(ExpressionEvaluator.ConstantNames), StringComparer.OrdinalIgnoreCase);

    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _tokenDelay;

    /// <param name="timeProvider">The clock the pauses between pieces run on.</param>
    /// <param name="tokenDelay">The pause between streamed pieces; <see cref="DefaultTokenDelay"/> when null, none when zero.</param>
    public DemoChatModel(TimeProvider timeProvider, TimeSpan? tokenDelay = null)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        var delay = tokenDelay ?? DefaultTokenDelay;
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero, nameof(tokenDelay));
        _timeProvider = timeProvider;
        _tokenDelay = delay;
    }

    /// <inheritdoc />
    public string Name => ModelName;

    /// <inheritdoc />
    public bool SupportsStreaming => true;

    /// <inheritdoc />
    public async IAsyncEnumerable<ModelUpdate> StreamAsync(
        ModelRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var updates = PlanTurn(request);
        for (var i = 0; i < updates.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (i > 0 && _tokenDelay > TimeSpan.Zero)
            {
                await Task.Delay(_tokenDelay, _timeProvider, cancellationToken);
            }

            yield return updates[i];
        }
    }

    private static List<ModelUpdate> PlanTurn(ModelRequest request)
    {
        var promptTokens = CountTokens(request.Instructions)
            + request.Messages.Sum(m => CountTokens(m.Content) + (m.ToolCalls?.Sum(c => CountTokens(c.Arguments)) ?? 0));

        if (request.Messages.Count > 0 && request.Messages[^1].Role == MessageRoles.Tool)
        {
            return TextTurn(AnswerFromToolResults(request.Messages), promptTokens);
        }

        var userText = request.Messages.LastOrDefault(m => m.Role == MessageRoles.User)?.Content ?? "";
        var calls = PlanToolCalls(userText, request.Tools);
        return calls.Count > 0
            ? ToolCallTurn(calls, promptTokens)
            : TextTurn(FriendlyReply(userText, request.Tools), promptTokens);
    }

    // ---- Answering from tool results ----

    private static string AnswerFromToolResults(IReadOnlyList<ThreadMessage> messages)
    {
        var first = messages.Count;
        while (first > 0 && messages[first - 1].Role == MessageRoles.Tool)
        {
            first--;
        }

        var calls = first > 0 && messages[first - 1].Role == MessageRoles.Assistant
            ? messages[first - 1].ToolCalls ?? []
            : [];

        var sentences = new List<string>();
        for (var i = first; i < messages.Count; i++)
        {
            var result = messages[i];
            var call = calls.FirstOrDefault(c => c.Id == result.ToolCallId);
            sentences.Add(DescribeResult(call?.Name ?? result.Name ?? "tool", call?.Arguments, result.Content));
        }

        return string.Join(' ', sentences);
    }

    private static string DescribeResult(string toolName, string? arguments, string content)
    {
        var failed = ToolResults.TryGetError(content, out var error);
        switch (toolName)
        {
            case CalculateTool.ToolName:
                if (!failed && double.TryParse(content.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                {
                    var expression = ReadStringArgument(arguments, CalculateTool.ExpressionArgument);
                    return expression is null ? $"The result is {content.Trim()}." : $"{expression} = {content.Trim()}.";
                }

                return $"I couldn't compute that: {Sentence(error ?? content)}";

            case GetTimeTool.ToolName:
                if (!failed && TryReadTime(content, out var zone, out var time, out var dayOfWeek))
                {
                    return $"The time in {zone} is {time} ({dayOfWeek}).";
                }

                return $"I couldn't get the time: {Sentence(error ?? content)}";

            default:
                return failed
                    ? $"The {toolName} tool failed: {Sentence(error!)}"
                    : $"The {toolName} tool returned: {Sentence(Quote(content, 200))}";
        }
    }

    private static bool TryReadTime(string content, out string zone, out string time, out string dayOfWeek)
    {
        zone = time = dayOfWeek = "";
        try
        {
            using var json = JsonDocument.Parse(content);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("localTime", out var localTime)
                || !DateTimeOffset.TryParse(localTime.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
            {
                return false;
            }

            zone = root.TryGetProperty("timezone", out var z) && z.ValueKind == JsonValueKind.String ? z.GetString()! : "UTC";
            time = local.ToString("HH:mm", CultureInfo.InvariantCulture);
            dayOfWeek = root.TryGetProperty("dayOfWeek", out var d) && d.ValueKind == JsonValueKind.String
                ? d.GetString()!
                : local.DayOfWeek.ToString();
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private static string? ReadStringArgument(string? arguments, string name)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(arguments);
            return json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty(name, out var value)
                && value.ValueKind == JsonValueKind.String
                    ? value.GetString()
                    : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // ---- Deciding on tool calls ----

    private sealed record PlannedCall(string Name, string Arguments);

    private static List<PlannedCall> PlanToolCalls(string userText, IReadOnlyList<ToolDefinition> tools)
    {
        var calls = new List<PlannedCall>();
        if (HasTool(tools, CalculateTool.ToolName) && FindExpression(userText) is { } expression)
        {
            calls.Add(new PlannedCall(CalculateTool.ToolName, JsonArguments(CalculateTool.ExpressionArgument, expression)));
        }

        if (HasTool(tools, GetTimeTool.ToolName) && TimeQuestion().IsMatch(userText))
        {
            calls.Add(new PlannedCall(GetTimeTool.ToolName, JsonArguments(GetTimeTool.TimeZoneArgument, FindTimeZone(userText))));
        }

        return calls;
    }

    private static bool HasTool(IReadOnlyList<ToolDefinition> tools, string name) =>
        tools.Any(t => string.Equals(t.Name, name, StringComparison.Ordinal));

    /// <summary>
    /// The first run of the text made only of numbers, operators, parentheses, commas and known function or constant
    /// names that parses as an expression and contains an operation (a binary operator or a function call), so that
    /// "hello 2 you" or "-5 degrees" are not arithmetic.
    /// </summary>
    internal static string? FindExpression(string text)
    {
        var runStart = -1;
        var runEnd = -1;
        foreach (Match lexeme in Lexeme().Matches(text))
        {
            if (lexeme.Groups["ws"].Success)
            {
                continue; // whitespace neither starts nor ends a run
            }

            var allowed = lexeme.Groups["num"].Success
                || lexeme.Groups["op"].Success
                || (lexeme.Groups["id"].Success && ExpressionNames.Contains(lexeme.Value));
            if (allowed)
            {
                runStart = runStart < 0 ? lexeme.Index : runStart;
                runEnd = lexeme.Index + lexeme.Length;
            }
            else if (runStart >= 0)
            {
                if (AcceptExpression(text[runStart..runEnd]) is { } found)
                {
                    return found;
                }

                runStart = -1;
            }
        }

        return runStart >= 0 ? AcceptExpression(text[runStart..runEnd]) : null;
    }

    private static string? AcceptExpression(string run)
    {
        var candidate = run.Trim().Trim(',').Trim();
        // Drop parentheses the surrounding prose opened or closed: "(that is 2+2)" leaves "2+2)".
        while (candidate.EndsWith(')') && candidate.Count(c => c == ')') > candidate.Count(c => c == '('))
        {
            candidate = candidate[..^1].TrimEnd();
        }

        while (candidate.StartsWith('(') && candidate.Count(c => c == '(') > candidate.Count(c => c == ')'))
        {
            candidate = candidate[1..].TrimStart();
        }

        return candidate.Length > 0
            && !DateLike().IsMatch(candidate)
            && HasOperation(candidate)
            && ExpressionEvaluator.IsWellFormed(candidate)
                ? candidate
                : null;
    }

    private static bool HasOperation(string candidate)
    {
        var afterOperand = false;
        Match? previous = null;
        foreach (Match lexeme in Lexeme().Matches(candidate))
        {
            if (lexeme.Groups["ws"].Success)
            {
                continue;
            }

            var value = lexeme.Value;
            if (value == "(" && previous is { } p && p.Groups["id"].Success
                && ExpressionEvaluator.FunctionNames.Contains(p.Value.ToLowerInvariant()))
            {
                return true; // a function call
            }

            if (afterOperand && value is "+" or "-" or "−" or "*" or "**" or "×" or "/" or "÷" or "%" or "^")
            {
                return true; // a binary operator between operands
            }

            afterOperand = lexeme.Groups["num"].Success || lexeme.Groups["id"].Success || value == ")";
            previous = lexeme;
        }

        return false;
    }

    private static string FindTimeZone(string text)
    {
        if (IanaZone().Match(text) is { Success: true } iana)
        {
            return iana.Value;
        }

        if (CityPattern.Match(text) is { Success: true } city)
        {
            var key = Whitespace().Replace(city.Value.ToLowerInvariant(), " ");
            return Cities[key];
        }

        return GetTimeTool.DefaultTimeZone; // also for an explicit "UTC" or "GMT"
    }

    private static string JsonArguments(string name, string value)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, ArgumentsWriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString(name, value);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    // ---- Streaming ----

    /// <summary>
    /// Each call's first piece carries its id and name; arguments follow in three pieces. With two calls the pieces
    /// interleave (call 0 and call 1 alternate), as some OpenAI-compatible servers send them.
    /// </summary>
    private static List<ModelUpdate> ToolCallTurn(List<PlannedCall> calls, int promptTokens)
    {
        var pieces = calls.Select(c => Split(c.Arguments, 3)).ToList();
        var updates = new List<ModelUpdate>();
        for (var index = 0; index < calls.Count; index++)
        {
            updates.Add(new ModelToolCallDelta(index, NewCallId(), calls[index].Name, null));
            updates.Add(new ModelToolCallDelta(index, null, null, pieces[index][0]));
        }

        for (var round = 1; round < pieces.Max(p => p.Count); round++)
        {
            for (var index = 0; index < calls.Count; index++)
            {
                if (round < pieces[index].Count)
                {
                    updates.Add(new ModelToolCallDelta(index, null, null, pieces[index][round]));
                }
            }
        }

        var completionTokens = calls.Sum(c => 1 + CountTokens(c.Arguments));
        updates.Add(new ModelFinished("tool_calls", new Usage(promptTokens, completionTokens, promptTokens + completionTokens)));
        return updates;
    }

    private static List<ModelUpdate> TextTurn(string text, int promptTokens)
    {
        var updates = new List<ModelUpdate>();
        foreach (Match word in Word().Matches(text))
        {
            updates.Add(new ModelTextDelta(word.Value));
        }

        var completionTokens = CountTokens(text);
        updates.Add(new ModelFinished("stop", new Usage(promptTokens, completionTokens, promptTokens + completionTokens)));
        return updates;
    }

    private static List<string> Split(string text, int parts)
    {
        var pieces = new List<string>();
        var start = 0;
        for (var part = 1; part <= parts; part++)
        {
            var end = part == parts ? text.Length : text.Length * part / parts;
            if (end > 0 && end < text.Length && char.IsLowSurrogate(text[end]))
            {
                end++; // never split a surrogate pair
            }

            if (end > start)
            {
                pieces.Add(text[start..end]);
                start = end;
            }
        }

        return pieces;
    }

    private static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

    private static int CountTokens(string? text) => string.IsNullOrEmpty(text) ? 0 : Word().Count(text);

    // ---- The reply when there is nothing to compute ----

    private static string FriendlyReply(string userText, IReadOnlyList<ToolDefinition> tools)
    {
        var reply = new StringBuilder("Hello! I'm the built-in demo model, so I can't hold a real conversation. ");
        var quote = Quote(userText, MaxQuoteLength);
        reply.Append(quote.Length > 0 ? $"You said: \"{quote}\". " : "I didn't find a message to answer. ");
        if (HasTool(tools, CalculateTool.ToolName))
        {
            reply.Append("I can do arithmetic with the calculate tool: try \"what is 17 * 23?\". ");
        }

        if (HasTool(tools, GetTimeTool.ToolName))
        {
            reply.Append("I can tell the time with the get_time tool: try \"what time is it in Tokyo?\". ");
        }

        reply.Append("To talk to a real model, set OPENAI_API_KEY (and optionally OPENAI_BASE_URL and OPENAI_MODEL) and restart.");
        return reply.ToString();
    }

    private static string Quote(string text, int maxLength)
    {
        var collapsed = Whitespace().Replace(text, " ").Trim();
        return collapsed.Length <= maxLength ? collapsed : collapsed[..maxLength].TrimEnd() + "…";
    }

    private static string Sentence(string text)
    {
        var trimmed = text.Trim();
        return trimmed.Length > 0 && trimmed[^1] is '.' or '!' or '?' ? trimmed : trimmed + ".";
    }

    // ---- Patterns ----

    [GeneratedRegex(@"(?<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)|(?<id>[A-Za-z_][A-Za-z0-9_]*)|(?<op>\*\*|[-+*/%^×÷−(),])|(?<ws>\s+)|(?<other>.)", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex Lexeme();

    [GeneratedRegex(@"^\d{1,4}([-/.])\d{1,2}\1\d{1,4}$", RegexOptions.CultureInvariant)]
    private static partial Regex DateLike();

    [GeneratedRegex(@"\b(?:what(?:'s|\s+is)?\s+the\s+time|what\s+time|(?:current|local)\s+time|time\s+(?:is\s+it\s+|right\s+now\s+)?(?:in|at)|time\s+now|time\s+is\s+it)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex TimeQuestion();

    [GeneratedRegex(@"\b(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)(?:/[A-Za-z0-9_+\-]+){1,2}", RegexOptions.CultureInvariant)]
    private static partial Regex IanaZone();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>A word with the whitespace around it: leading whitespace only at the start, so pieces concatenate back to the text.</summary>
    [GeneratedRegex(@"^\s+\S+\s*|\S+\s*", RegexOptions.Singleline)]
    private static partial Regex Word();
}
