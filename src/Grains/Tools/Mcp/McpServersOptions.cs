using System.Text.RegularExpressions;
using Conversations.Grains.Tools.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Conversations.Grains.Tools.Mcp;

/// <summary>
/// One MCP server as configuration declares it (section <c>Tools:Mcp:{server}</c>): a command the silo starts and
/// talks to over stdio, or the URL of a streamable HTTP endpoint (older HTTP+SSE servers are detected too).
/// </summary>
/// <example>
/// <code>
/// "Tools": { "Mcp": {
///   "files": { "Command": "npx", "Args": [ "-y", "@modelcontextprotocol/server-filesystem", "/srv/docs" ],
///              "Env": { "LOG_LEVEL": "warn" } },
///   "search": { "Url": "https://mcp.example.com/mcp",
///               "Headers": { "Authorization": "Bearer ${secret:SEARCH_KEY}" }, "ToolPrefix": "web_" }
/// } }
/// </code>
/// The model then sees <c>files_read_file</c>, <c>files_list_directory</c>, … and <c>web_search</c>.
/// </example>
public sealed class McpServerSettings
{
    /// <summary>stdio: the program to start (found on PATH, or a path).</summary>
    public string? Command { get; set; }

    /// <summary>stdio: its arguments. No secrets here: a command line is visible to every process of the machine.</summary>
    public List<string> Args { get; } = [];

    /// <summary>stdio: environment variables added to the silo's own; values may name secrets (<c>${secret:NAME}</c>).</summary>
    public Dictionary<string, string> Env { get; } = new(StringComparer.Ordinal);

    /// <summary>stdio: the working directory; the silo's when unset.</summary>
    public string? WorkingDirectory { get; set; }

    /// <summary>HTTP: the endpoint, e.g. <c>https://mcp.example.com/mcp</c>.</summary>
    public string? Url { get; set; }

    /// <summary>HTTP: headers of every request; values may name secrets.</summary>
    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// What the server's tool names are prefixed with for the model; unset: <c>{server}_</c>
    /// (<c>files_read_file</c>); empty: the server's names as they are.
    /// </summary>
    public string? ToolPrefix { get; set; }

    /// <summary>How long connecting and listing the tools may take. Default 30 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After a failed connection, how long the silo waits before it tries again on the next listing of tools. Default 30 s.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The most characters of a tool result the model reads; longer ones are cut, and the result says so.</summary>
    public int MaxResultChars { get; set; } = ToolText.DefaultMaxResultChars;
}

/// <summary>A validated MCP server declaration.</summary>
public sealed record McpServerSpec(
    string Name,
    string? Command,
    IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Env,
    string? WorkingDirectory,
    Uri? Url,
    IReadOnlyDictionary<string, string> Headers,
    string ToolPrefix,
    TimeSpan ConnectTimeout,
    TimeSpan RetryInterval,
    int MaxResultChars)
{
    public bool IsStdio => Command is not null;

    /// <summary>Where the server is, for logs (no secrets: URLs of MCP servers cannot hold any).</summary>
    public string Endpoint => Command is not null ? $"stdio:{Command}" : Url!.GetLeftPart(UriPartial.Path);
}

/// <summary>Every MCP server of configuration (section <c>Tools:Mcp</c>), and what is wrong with the declarations.</summary>
public sealed class McpServersOptions
{
    public const string SectionName = "Tools:Mcp";

    public List<McpServerSpec> Servers { get; } = [];

    /// <summary>Problems found reading the section, each naming its setting; any stops the silo at start.</summary>
    public List<string> Errors { get; } = [];
}

/// <summary>Reads and validates <c>Tools:Mcp</c>. A server that cannot be reached is not an error of configuration: it is retried.</summary>
internal sealed partial class McpServersSetup(IConfiguration configuration) : IConfigureOptions<McpServersOptions>, IValidateOptions<McpServersOptions>
{
    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$")]
    private static partial Regex ServerName();

    [GeneratedRegex("^[A-Za-z0-9_-]{0,32}$")]
    private static partial Regex Prefix();

    public void Configure(McpServersOptions options)
    {
        foreach (var section in configuration.GetSection(McpServersOptions.SectionName).GetChildren())
        {
            var prefix = $"{McpServersOptions.SectionName}:{section.Key}";
            var settings = new McpServerSettings();
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
            if (!ServerName().IsMatch(section.Key))
            {
                errors.Add($"{prefix}: a server name is 1 to 32 letters, digits, '_' or '-' (it prefixes its tools' names).");
            }

            var command = string.IsNullOrWhiteSpace(settings.Command) ? null : settings.Command.Trim();
            var urlText = string.IsNullOrWhiteSpace(settings.Url) ? null : settings.Url.Trim();
            Uri? url = null;
            if ((command is null) == (urlText is null))
            {
                errors.Add($"{prefix}: set either Command (a stdio server) or Url (a streamable HTTP server), not both or neither.");
            }
            else if (urlText is not null && (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https")))
            {
                errors.Add($"{prefix}:Url must be an absolute http(s) URL; got '{settings.Url}'.");
            }

            if (url is not null && (SecretReferences.NamesIn(urlText).Count > 0 || !string.IsNullOrEmpty(url.UserInfo)))
            {
                errors.Add($"{prefix}:Url: credentials go in Headers, not in the URL (URLs reach logs).");
            }

            if (settings.Args.Any(a => SecretReferences.NamesIn(a).Count > 0) || SecretReferences.NamesIn(command).Count > 0)
            {
                errors.Add($"{prefix}:Args: secrets go in Env, not on the command line (every process of the machine can read it).");
            }

            foreach (var (key, value) in settings.Env.Select(e => ($"Env:{e.Key}", e.Value)).Concat(settings.Headers.Select(h => ($"Headers:{h.Key}", h.Value))))
            {
                foreach (var missing in SecretReferences.Missing([value], configuration))
                {
                    errors.Add($"{prefix}:{key} names the secret '{missing}', which configuration does not hold.");
                }
            }

            var toolPrefix = settings.ToolPrefix ?? section.Key + "_";
            if (!Prefix().IsMatch(toolPrefix))
            {
                errors.Add($"{prefix}:ToolPrefix is up to 32 letters, digits, '_' or '-'; got '{settings.ToolPrefix}'.");
            }

            if (settings.ConnectTimeout < TimeSpan.FromMilliseconds(100) || settings.ConnectTimeout > TimeSpan.FromMinutes(10))
            {
                errors.Add($"{prefix}:ConnectTimeout must be between 100 ms and 10 minutes; got {settings.ConnectTimeout}.");
            }

            if (settings.RetryInterval < TimeSpan.Zero || settings.RetryInterval > TimeSpan.FromDays(1))
            {
                errors.Add($"{prefix}:RetryInterval must be between 0 and 1 day; got {settings.RetryInterval}.");
            }

            if (settings.MaxResultChars is < 100 or > 1_000_000)
            {
                errors.Add($"{prefix}:MaxResultChars must be between 100 and 1000000; got {settings.MaxResultChars}.");
            }

            if (errors.Count > 0)
            {
                options.Errors.AddRange(errors);
                continue;
            }

            options.Servers.Add(new McpServerSpec(
                section.Key,
                command,
                [.. settings.Args],
                new Dictionary<string, string>(settings.Env, StringComparer.Ordinal),
                string.IsNullOrWhiteSpace(settings.WorkingDirectory) ? null : settings.WorkingDirectory,
                url,
                new Dictionary<string, string>(settings.Headers, StringComparer.OrdinalIgnoreCase),
                toolPrefix,
                settings.ConnectTimeout,
                settings.RetryInterval,
                settings.MaxResultChars));
        }
    }

    public ValidateOptionsResult Validate(string? name, McpServersOptions options) =>
        options.Errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Errors);
}
