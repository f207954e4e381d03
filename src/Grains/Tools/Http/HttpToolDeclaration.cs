using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Grains.Abstractions.Agents;
using Conversations.Grains.Tools.Secrets;

namespace Conversations.Grains.Tools.Http;

/// <summary>
/// The rules an HTTP tool's declaration must meet, wherever it is declared — configuration (<c>Tools:Http</c>) or an
/// agent of the agents API (<see cref="HttpToolDefinition"/>) — so both say the same thing about the same mistake.
/// </summary>
public static partial class HttpToolDeclaration
{
    /// <summary>The longest timeout an agent's own HTTP tool may have (configuration's tools may be given up to an hour).</summary>
    public static readonly TimeSpan MaxAgentToolTimeout = TimeSpan.FromMinutes(1);

    private static readonly JsonElement EmptyObjectSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    internal static partial Regex ToolName();

    /// <summary><c>{argument}</c> placeholders of a URL template.</summary>
    [GeneratedRegex(@"\{([A-Za-z0-9_]+)\}")]
    internal static partial Regex Placeholder();

    /// <summary>
    /// Checks one declaration and returns its spec, or null after reporting each problem through
    /// <paramref name="error"/> (the field — <c>name</c>, <c>description</c>, <c>url</c>, <c>method</c>,
    /// <c>timeout</c>, <c>maxResponseChars</c>, <c>headers</c>, <c>parameters</c> — and a message that starts with
    /// <paramref name="label"/> of it).
    /// </summary>
    /// <param name="name">The tool's name.</param>
    /// <param name="settings">The declaration.</param>
    /// <param name="schema">The parameters' JSON schema; null for a tool without parameters.</param>
    /// <param name="nameTaken">Why <paramref name="name"/> may not be used (e.g. "the name of a built-in tool"), or null.</param>
    /// <param name="label">How a field is named in messages.</param>
    /// <param name="error">Told each problem: the field and the message.</param>
    /// <param name="maxTimeout">The longest timeout allowed.</param>
    public static HttpToolSpec? Validate(
        string name,
        HttpToolSettings settings,
        JsonElement? schema,
        string? nameTaken,
        Func<string, string> label,
        Action<string, string> error,
        TimeSpan? maxTimeout = null)
    {
        var failed = false;
        void Fail(string field, string message)
        {
            failed = true;
            error(field, message);
        }

        if (!ToolName().IsMatch(name))
        {
            Fail("name", $"{label("name")}: a tool name is 1 to 64 letters, digits, '_' or '-' (what OpenAI-compatible endpoints accept).");
        }
        else if (nameTaken is not null)
        {
            Fail("name", $"{label("name")}: '{name}' is {nameTaken}.");
        }

        if (string.IsNullOrWhiteSpace(settings.Description))
        {
            Fail("description", $"{label("description")} is required.");
        }

        var url = settings.Url?.Trim();
        if (string.IsNullOrEmpty(url)
            || !Uri.TryCreate(Placeholder().Replace(url, "x"), UriKind.Absolute, out var sample)
            || sample.Scheme is not ("http" or "https"))
        {
            Fail("url", $"{label("url")} must be an absolute http(s) URL (with optional {{argument}} placeholders); got '{settings.Url}'.");
        }
        else if (SecretReferences.NamesIn(url).Count > 0)
        {
            Fail("url", $"{label("url")}: secrets go in headers, not in the URL (URLs reach logs).");
        }

        var method = settings.Method.Trim().ToUpperInvariant() switch
        {
            "GET" => HttpMethod.Get,
            "POST" => HttpMethod.Post,
            "PUT" => HttpMethod.Put,
            "PATCH" => HttpMethod.Patch,
            "DELETE" => HttpMethod.Delete,
            _ => null,
        };
        if (method is null)
        {
            Fail("method", $"{label("method")} must be GET, POST, PUT, PATCH or DELETE; got '{settings.Method}'.");
        }

        var longest = maxTimeout ?? TimeSpan.FromHours(1);
        if (settings.Timeout < TimeSpan.FromMilliseconds(10) || settings.Timeout > longest)
        {
            Fail("timeout", string.Create(
                CultureInfo.InvariantCulture,
                $"{label("timeout")} must be between 10 ms and {Describe(longest)}; got {settings.Timeout}."));
        }

        if (settings.MaxResponseChars is < 100 or > 1_000_000)
        {
            Fail("maxResponseChars", $"{label("maxResponseChars")} must be between 100 and 1000000; got {settings.MaxResponseChars}.");
        }

        foreach (var header in settings.Headers.Keys)
        {
            if (SecretReferences.NamesIn(header).Count > 0)
            {
                Fail("headers", $"{label("headers")}: a header name cannot hold a secret ('{header}').");
            }
        }

        var parameters = schema ?? EmptyObjectSchema;
        if (parameters.ValueKind != JsonValueKind.Object)
        {
            Fail("parameters", $"{label("parameters")} must be a JSON schema object.");
        }
        else if (!Validation.ToolArguments.CanValidate(new ToolDefinition(name, "", parameters)))
        {
            Fail("parameters", $"{label("parameters")} is not a JSON schema the validator can compile.");
        }

        return failed
            ? null
            : new HttpToolSpec(
                name,
                settings.Description!.Trim(),
                parameters,
                url!,
                method!,
                new Dictionary<string, string>(settings.Headers, StringComparer.OrdinalIgnoreCase),
                settings.Timeout,
                settings.Retry ?? (method == HttpMethod.Get || method == HttpMethod.Put || method == HttpMethod.Delete),
                settings.MaxResponseChars);
    }

    /// <summary>The spec of an agent's HTTP tool as stored (it was validated when the agent was written).</summary>
    public static HttpToolSpec? ToSpec(HttpToolDefinition definition)
    {
        JsonElement? schema;
        try
        {
            using var document = JsonDocument.Parse(definition.Parameters);
            schema = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }

        return Validate(definition.Name, ToSettings(definition), schema, null, f => f, (_, _) => { }, MaxAgentToolTimeout);
    }

    /// <summary>The settings shape of a stored definition.</summary>
    public static HttpToolSettings ToSettings(HttpToolDefinition definition)
    {
        var settings = new HttpToolSettings
        {
            Description = definition.Description,
            Url = definition.Url,
            Method = definition.Method,
            Timeout = definition.Timeout,
            Retry = definition.Retry,
            MaxResponseChars = definition.MaxResponseChars,
        };
        foreach (var (header, value) in definition.Headers)
        {
            settings.Headers[header] = value;
        }

        return settings;
    }

    private static string Describe(TimeSpan span) =>
        span >= TimeSpan.FromHours(1) ? "1 hour" : string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.###} s");
}
