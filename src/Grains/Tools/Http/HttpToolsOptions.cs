using System.Text.Json;
using System.Text.RegularExpressions;
using Conversations.Grains.Tools.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Tools.Http;

/// <summary>
/// One HTTP tool as configuration declares it (section <c>Tools:Http:{name}</c>; the name is the function name the
/// model calls).
/// </summary>
/// <example>
/// <code>
/// "Tools": { "Http": { "get_weather": {
///   "Description": "Current weather in a city.",
///   "Parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": [ "city" ] },
///   "Url": "https://api.example.com/weather/{city}",
///   "Method": "GET",
///   "Headers": { "Authorization": "Bearer ${secret:WEATHER_KEY}" },
///   "Timeout": "00:00:10"
/// } } }
/// </code>
/// </example>
public sealed class HttpToolSettings
{
    /// <summary>What the tool does, for the model. Required.</summary>
    public string? Description { get; set; }

    /// <summary>
    /// The URL; <c>{argument}</c> placeholders are replaced by the URL-escaped argument (which then goes nowhere else).
    /// Required, absolute http(s).
    /// </summary>
    public string? Url { get; set; }

    /// <summary>
    /// <c>GET</c> (default) or <c>DELETE</c>: the other arguments go in the query string; <c>POST</c>, <c>PUT</c> or
    /// <c>PATCH</c>: they are the JSON body.
    /// </summary>
    public string Method { get; set; } = "GET";

    /// <summary>Request headers; values may name secrets: <c>Bearer ${secret:WEATHER_KEY}</c> (see <see cref="SecretReferences"/>).</summary>
    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long one call may take, retries included; then it fails as timed out. Default 10 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether failed attempts (5xx, 408, 429, connection errors) are retried by the resilience handler. Default: yes for
    /// GET, PUT and DELETE, no for POST and PATCH, which may not be safe to repeat.
    /// </summary>
    public bool? Retry { get; set; }

    /// <summary>The most characters of the response the model reads; longer ones are cut, and the result says so.</summary>
    public int MaxResponseChars { get; set; } = ToolText.DefaultMaxResultChars;
}

/// <summary>A validated HTTP tool declaration.</summary>
public sealed record HttpToolSpec(
    string Name,
    string Description,
    JsonElement ParametersSchema,
    string UrlTemplate,
    HttpMethod Method,
    IReadOnlyDictionary<string, string> Headers,
    TimeSpan Timeout,
    bool AllowRetries,
    int MaxResponseChars)
{
    /// <summary>Methods whose other arguments go in the query string; the rest send them as a JSON body.</summary>
    public bool SendsArgumentsInQuery => Method == HttpMethod.Get || Method == HttpMethod.Delete;
}

/// <summary>Every HTTP tool of configuration (section <c>Tools:Http</c>), and what is wrong with the declarations.</summary>
public sealed class HttpToolsOptions
{
    public const string SectionName = "Tools:Http";

    public List<HttpToolSpec> Tools { get; } = [];

    /// <summary>Problems found reading the section, each naming its setting; any stops the silo at start.</summary>
    public List<string> Errors { get; } = [];

    /// <summary>The longest timeout of any tool (at least the default): the resilience handler never cuts a call shorter than its tool allows.</summary>
    public TimeSpan LongestTimeout => Tools.Count == 0 ? TimeSpan.FromSeconds(10) : Tools.Max(t => t.Timeout);
}

/// <summary>Reads and validates <c>Tools:Http</c>: names, URLs, methods, schemas, timeouts, and that every named secret is configured.</summary>
internal sealed partial class HttpToolsSetup(IConfiguration configuration, IEnumerable<ITool> builtIns)
    : IConfigureOptions<HttpToolsOptions>, IValidateOptions<HttpToolsOptions>
{
    private static readonly JsonElement EmptyObjectSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    internal static partial Regex ToolName();

    [GeneratedRegex(@"\{([A-Za-z0-9_]+)\}")]
    internal static partial Regex Placeholder();

    public void Configure(HttpToolsOptions options)
    {
        var builtInNames = builtIns.Select(t => t.Definition.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var section in configuration.GetSection(HttpToolsOptions.SectionName).GetChildren())
        {
            var prefix = $"{HttpToolsOptions.SectionName}:{section.Key}";
            var errors = new List<string>();
            var settings = new HttpToolSettings();
            try
            {
                section.Bind(settings);
            }
            catch (InvalidOperationException ex)
            {
                options.Errors.Add($"{prefix}: {ex.Message}");
                continue;
            }

            if (!ToolName().IsMatch(section.Key))
            {
                errors.Add($"{prefix}: a tool name is 1 to 64 letters, digits, '_' or '-' (what OpenAI-compatible endpoints accept).");
            }
            else if (builtInNames.Contains(section.Key))
            {
                errors.Add($"{prefix}: '{section.Key}' is the name of a built-in tool.");
            }

            if (string.IsNullOrWhiteSpace(settings.Description))
            {
                errors.Add($"{prefix}:Description is required.");
            }

            var url = settings.Url?.Trim();
            if (string.IsNullOrEmpty(url)
                || !Uri.TryCreate(Placeholder().Replace(url, "x"), UriKind.Absolute, out var sample)
                || sample.Scheme is not ("http" or "https"))
            {
                errors.Add($"{prefix}:Url must be an absolute http(s) URL (with optional {{argument}} placeholders); got '{settings.Url}'.");
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
                errors.Add($"{prefix}:Method must be GET, POST, PUT, PATCH or DELETE; got '{settings.Method}'.");
            }

            if (settings.Timeout < TimeSpan.FromMilliseconds(10) || settings.Timeout > TimeSpan.FromHours(1))
            {
                errors.Add($"{prefix}:Timeout must be between 10 ms and 1 hour; got {settings.Timeout}.");
            }

            if (settings.MaxResponseChars is < 100 or > 1_000_000)
            {
                errors.Add($"{prefix}:MaxResponseChars must be between 100 and 1000000; got {settings.MaxResponseChars}.");
            }

            foreach (var (header, value) in settings.Headers)
            {
                if (SecretReferences.NamesIn(header).Count > 0)
                {
                    errors.Add($"{prefix}:Headers: a header name cannot hold a secret ('{header}').");
                }

                foreach (var missing in SecretReferences.Missing([value], configuration))
                {
                    errors.Add($"{prefix}:Headers:{header} names the secret '{missing}', which configuration does not hold.");
                }
            }

            if (SecretReferences.NamesIn(url).Count > 0)
            {
                errors.Add($"{prefix}:Url: secrets go in headers, not in the URL (URLs reach logs).");
            }

            var schema = EmptyObjectSchema;
            try
            {
                schema = ConfigurationJson.Read(section.GetSection("Parameters")) ?? EmptyObjectSchema;
                if (schema.ValueKind != JsonValueKind.Object)
                {
                    errors.Add($"{prefix}:Parameters must be a JSON schema object.");
                }
                else if (!Validation.ToolArguments.CanValidate(new ToolDefinition(section.Key, "", schema)))
                {
                    errors.Add($"{prefix}:Parameters is not a JSON schema the validator can compile.");
                }
            }
            catch (JsonException ex)
            {
                errors.Add($"{prefix}:Parameters is not valid JSON: {ex.Message}");
            }

            if (errors.Count > 0)
            {
                options.Errors.AddRange(errors);
                continue;
            }

            options.Tools.Add(new HttpToolSpec(
                section.Key,
                settings.Description!.Trim(),
                schema,
                url!,
                method!,
                new Dictionary<string, string>(settings.Headers, StringComparer.OrdinalIgnoreCase),
                settings.Timeout,
                settings.Retry ?? (method == HttpMethod.Get || method == HttpMethod.Put || method == HttpMethod.Delete),
                settings.MaxResponseChars));
        }
    }

    public ValidateOptionsResult Validate(string? name, HttpToolsOptions options) =>
        options.Errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Errors);
}
