using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conversations.Grains.Tools.Secrets;
using Microsoft.Extensions.Configuration;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Conversations.Grains.Tools.Http;

/// <summary>
/// A tool that is one HTTP request, declared in configuration (<see cref="HttpToolSettings"/>), sent through
/// <see cref="IHttpClientFactory"/>'s client <see cref="ClientName"/> with the standard resilience handler.
/// </summary>
/// <remarks>
/// <para>The request: <c>{argument}</c> placeholders of the URL take the URL-escaped arguments; the other arguments
/// are the query string (GET, DELETE: strings and numbers as they are, arrays as repeated keys, objects as JSON) or
/// the JSON body (POST, PUT, PATCH). Header values resolve their <c>${secret:NAME}</c> references at each call.</para>
/// <para>The result the model reads: a 2xx body as it came, cut at <see cref="HttpToolSpec.MaxResponseChars"/> with a
/// line saying so (an empty body: a line saying that). A body declared JSON (<c>application/json</c>,
/// <c>…+json</c>) that does not parse fails the call: the service broke its contract, and the model should not
/// take half a document as data. Other content types pass as text. Non-2xx fails with the status and an excerpt of
/// the body; a call over its timeout fails as timed out. Secret values are masked in everything that comes back.</para>
/// </remarks>
public sealed class HttpTool(HttpToolSpec spec, IHttpClientFactory clients, IConfiguration configuration) : ITool
{
    /// <summary>The named client every HTTP tool sends with.</summary>
    public const string ClientName = "Conversations.Tools.Http";

    /// <summary>Set on each request: whether the resilience handler may retry it (see <see cref="HttpToolSettings.Retry"/>).</summary>
    public static readonly HttpRequestOptionsKey<bool> AllowRetries = new("Conversations.Tools.Http.AllowRetries");

    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json") { CharSet = "utf-8" };

    public ToolDefinition Definition { get; } = new(spec.Name, spec.Description, spec.ParametersSchema);

    public HttpToolSpec Spec => spec;

    public async ValueTask<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken = default)
    {
        var redactor = new SecretRedactor();
        using var request = BuildRequest(arguments, redactor);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(spec.Timeout);
        try
        {
            using var response = await clients.CreateClient(ClientName)
                .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token)
                .ConfigureAwait(false);
            var (body, truncated) = await ReadBodyAsync(response.Content, spec.MaxResponseChars, timeout.Token).ConfigureAwait(false);
            body = redactor.Redact(body);
            var status = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                throw new ToolException($"HTTP {status} {response.ReasonPhrase}: {ToolText.Excerpt(body)}".Replace("  ", " ", StringComparison.Ordinal));
            }

            if (body.Length == 0)
            {
                return $"HTTP {status} with an empty body.";
            }

            if (!truncated && IsJson(response.Content.Headers.ContentType) && !IsValidJson(body))
            {
                throw new ToolException($"The response (HTTP {status}) is declared JSON but is not valid JSON: {ToolText.Excerpt(body)}");
            }

            return ToolText.Limit(body, spec.MaxResponseChars, truncated);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw TimedOut();
        }
        catch (TimeoutRejectedException)
        {
            throw TimedOut();
        }
        catch (BrokenCircuitException)
        {
            throw new ToolException($"The service behind '{spec.Name}' failed too often lately; calls to it are paused for a moment. Try again later.");
        }
        catch (HttpRequestException ex)
        {
            throw new ToolException($"The service behind '{spec.Name}' could not be reached: {redactor.Redact(ex.Message)}");
        }
    }

    private ToolException TimedOut() =>
        new($"'{spec.Name}' timed out after {spec.Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.");

    private HttpRequestMessage BuildRequest(JsonElement arguments, SecretRedactor redactor)
    {
        var values = arguments.ValueKind == JsonValueKind.Object
            ? arguments.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal)
            : [];

        var used = new HashSet<string>(StringComparer.Ordinal);
        var url = HttpToolDeclaration.Placeholder().Replace(spec.UrlTemplate, match =>
        {
            var name = match.Groups[1].Value;
            if (!values.TryGetValue(name, out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            {
                throw new ToolException($"Missing required argument '{name}' (it is part of the URL).");
            }

            used.Add(name);
            return Uri.EscapeDataString(ScalarText(value));
        });

        var rest = values.Where(p => !used.Contains(p.Key)).ToList();
        HttpContent? content = null;
        if (spec.SendsArgumentsInQuery)
        {
            url = AppendQuery(url, rest);
        }
        else
        {
            var body = new JsonObject();
            foreach (var (name, value) in rest)
            {
                body[name] = JsonSerializer.SerializeToNode(value);
            }

            content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            content.Headers.ContentType = JsonMediaType;
        }

        var request = new HttpRequestMessage(spec.Method, url) { Content = content };
        request.Options.Set(AllowRetries, spec.AllowRetries);
        foreach (var (header, template) in spec.Headers)
        {
            var value = SecretReferences.Resolve(template, configuration, redactor);
            if (!request.Headers.TryAddWithoutValidation(header, value) && content is not null)
            {
                content.Headers.Remove(header);
                content.Headers.TryAddWithoutValidation(header, value);
            }
        }

        return request;
    }

    private static string AppendQuery(string url, IEnumerable<KeyValuePair<string, JsonElement>> arguments)
    {
        var query = new StringBuilder();
        foreach (var (name, value) in arguments)
        {
            IEnumerable<JsonElement> items = value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : [value];
            foreach (var item in items.Where(i => i.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined)))
            {
                query.Append(query.Length == 0 ? "" : "&")
                    .Append(Uri.EscapeDataString(name))
                    .Append('=')
                    .Append(Uri.EscapeDataString(ScalarText(item)));
            }
        }

        if (query.Length == 0)
        {
            return url;
        }

        var fragment = url.IndexOf('#', StringComparison.Ordinal);
        var (head, tail) = fragment < 0 ? (url, "") : (url[..fragment], url[fragment..]);
        return head + (head.Contains('?', StringComparison.Ordinal) ? "&" : "?") + query + tail;
    }

    /// <summary>A string as it is; a number or boolean as its JSON text; an object or array as compact JSON.</summary>
    private static string ScalarText(JsonElement value) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();

    private static async Task<(string Body, bool Truncated)> ReadBodyAsync(HttpContent content, int maxChars, CancellationToken cancellationToken)
    {
        var encoding = Encoding.UTF8;
        if (content.Headers.ContentType?.CharSet is { Length: > 0 } charset)
        {
            try
            {
                encoding = Encoding.GetEncoding(charset.Trim('"'));
            }
            catch (ArgumentException)
            {
                // An unknown charset: read it as UTF-8.
            }
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, encoding, detectEncodingFromByteOrderMarks: true);
        var buffer = new char[Math.Min(maxChars + 1, 64 * 1024)];
        var text = new StringBuilder();
        while (text.Length <= maxChars)
        {
            var read = await reader.ReadAsync(buffer.AsMemory(0, Math.Min(buffer.Length, maxChars + 1 - text.Length)), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return (text.ToString(), false);
            }

            text.Append(buffer, 0, read);
        }

        return (text.ToString(0, maxChars), true);
    }

    private static bool IsJson(MediaTypeHeaderValue? contentType) =>
        contentType?.MediaType is { } type
        && (type.Equals("application/json", StringComparison.OrdinalIgnoreCase) || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase));

    private static bool IsValidJson(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
