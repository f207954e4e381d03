using System.Text.Json;
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
    /// <remarks>At least <see cref="HttpToolDeclaration.MaxAgentToolTimeout"/>: tools that agents declare through the API share the handler.</remarks>
    public TimeSpan LongestTimeout => Tools.Select(t => t.Timeout).Append(HttpToolDeclaration.MaxAgentToolTimeout).Max();
}

/// <summary>Reads and validates <c>Tools:Http</c> (<see cref="HttpToolDeclaration"/>), and that every named secret is configured.</summary>
internal sealed class HttpToolsSetup(IConfiguration configuration, IEnumerable<ITool> builtIns)
    : IConfigureOptions<HttpToolsOptions>, IValidateOptions<HttpToolsOptions>
{
    private static readonly Dictionary<string, string> SettingNames = new(StringComparer.Ordinal)
    {
        ["description"] = "Description",
        ["url"] = "Url",
        ["method"] = "Method",
        ["timeout"] = "Timeout",
        ["maxResponseChars"] = "MaxResponseChars",
        ["headers"] = "Headers",
        ["parameters"] = "Parameters",
    };

    public void Configure(HttpToolsOptions options)
    {
        var builtInNames = builtIns.Select(t => t.Definition.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var section in configuration.GetSection(HttpToolsOptions.SectionName).GetChildren())
        {
            var prefix = $"{HttpToolsOptions.SectionName}:{section.Key}";
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

            var errors = new List<string>();
            JsonElement? schema = null;
            try
            {
                schema = ConfigurationJson.Read(section.GetSection("Parameters"));
            }
            catch (JsonException ex)
            {
                errors.Add($"{prefix}:Parameters is not valid JSON: {ex.Message}");
            }

            foreach (var (header, value) in settings.Headers)
            {
                foreach (var missing in SecretReferences.Missing([value], configuration))
                {
                    errors.Add($"{prefix}:Headers:{header} names the secret '{missing}', which configuration does not hold.");
                }
            }

            var spec = HttpToolDeclaration.Validate(
                section.Key,
                settings,
                schema,
                builtInNames.Contains(section.Key) ? "the name of a built-in tool" : null,
                field => field == "name" ? prefix : $"{prefix}:{SettingNames[field]}",
                (_, message) => errors.Add(message));
            if (errors.Count > 0 || spec is null)
            {
                options.Errors.AddRange(errors);
                continue;
            }

            options.Tools.Add(spec);
        }
    }

    public ValidateOptionsResult Validate(string? name, HttpToolsOptions options) =>
        options.Errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Errors);
}
