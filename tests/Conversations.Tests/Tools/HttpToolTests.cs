using System.Text.Json;
using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Http;
using Conversations.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Conversations.Tests.Tools;

/// <summary>HTTP tools declared in configuration, called for real (Kestrel on loopback) through the silo's HTTP client and resilience handler.</summary>
public sealed class HttpToolTests
{
    private const string Secret = "wk-0123456789-SECRET";

    private static CancellationToken Guard => TestTimeouts.Guard();

    /// <summary>The settings of one HTTP tool; <paramref name="more"/>'s keys are relative to its section.</summary>
    private static Dictionary<string, string?> Declare(string name, string url, string method = "GET", IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"Tools:Http:{name}:Description"] = $"The {name} tool.",
            [$"Tools:Http:{name}:Url"] = url,
            [$"Tools:Http:{name}:Method"] = method,
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[$"Tools:Http:{name}:{key}"] = value;
        }

        return settings;
    }

    private static JsonElement Args(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task Get_fills_url_placeholders_and_query_and_sends_the_secret_header_but_masks_it_in_the_result()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        var settings = Declare("get_weather", service.BaseUrl + "/weather/{city}", more: new Dictionary<string, string?>
        {
            ["Headers:Authorization"] = "Bearer ${secret:WEATHER_KEY}",
            ["Parameters"] = """{"type":"object","properties":{"city":{"type":"string"},"units":{"type":"string"}},"required":["city"]}""",
        });
        settings["WEATHER_KEY"] = Secret;
        await using var host = await ToolHost.StartAsync(settings, cancellationToken: Guard);

        var tool = host.Tool("get_weather");
        var result = await tool.InvokeAsync(Args("""{"city":"São Paulo/Centro","units":"metric"}"""), Guard);

        var request = Assert.Single(service.Requests);
        Assert.Equal("GET", request.Method);
        Assert.Equal("/weather/S%C3%A3o%20Paulo%2FCentro", request.Path);
        Assert.Equal("?units=metric", request.Query);
        Assert.Equal("Bearer " + Secret, request.Headers["Authorization"]);
        using var body = JsonDocument.Parse(result);
        // (ASP.NET Core's route values keep an escaped '/' escaped.)
        Assert.Equal("São Paulo%2FCentro", body.RootElement.GetProperty("city").GetString());
        Assert.Equal("metric", body.RootElement.GetProperty("units").GetString());
        // The service echoed the credential: the model reads a mask, not the secret.
        Assert.Equal("Bearer ***", body.RootElement.GetProperty("echo").GetString());
        Assert.DoesNotContain(Secret, result, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, host.Logs.AllText, StringComparison.Ordinal);
        Assert.Equal("The get_weather tool.", tool.Definition.Description);
        Assert.Equal(["city"], tool.Definition.ParametersSchema.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Post_sends_the_other_arguments_as_a_json_body()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var host = await ToolHost.StartAsync(Declare("create_order", service.BaseUrl + "/orders", "POST"), cancellationToken: Guard);

        var result = await host.Tool("create_order").InvokeAsync(Args("""{"item":"tea","quantity":3,"gift":true,"tags":["a","b"]}"""), Guard);

        var request = Assert.Single(service.Requests);
        Assert.Equal("POST", request.Method);
        Assert.StartsWith("application/json", request.Headers["Content-Type"], StringComparison.Ordinal);
        using var sent = JsonDocument.Parse(request.Body);
        Assert.Equal("tea", sent.RootElement.GetProperty("item").GetString());
        Assert.Equal(3, sent.RootElement.GetProperty("quantity").GetInt32());
        Assert.True(sent.RootElement.GetProperty("gift").GetBoolean());
        Assert.Equal(2, sent.RootElement.GetProperty("tags").GetArrayLength());
        Assert.Equal(request.Body, result);
    }

    [Fact]
    public async Task Server_error_fails_with_the_status_and_an_excerpt_and_a_post_is_not_retried()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var host = await ToolHost.StartAsync(Declare("explode", service.BaseUrl + "/fail", "POST"), cancellationToken: Guard);

        var error = await Assert.ThrowsAsync<ToolException>(async () => await host.Tool("explode").InvokeAsync(Args("{}"), Guard));

        Assert.Contains("HTTP 500", error.Message, StringComparison.Ordinal);
        Assert.Contains("upstream exploded: the database is down stack trace follows", error.Message, StringComparison.Ordinal);
        Assert.Single(service.Requests);
    }

    [Fact]
    public async Task A_get_that_fails_transiently_is_retried_by_the_resilience_handler()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var host = await ToolHost.StartAsync(Declare("flaky", service.BaseUrl + "/flaky"), cancellationToken: Guard);

        var result = await host.Tool("flaky").InvokeAsync(Args("{}"), Guard);

        Assert.Equal("recovered", result);
        Assert.Equal(2, service.Requests.Count);
    }

    [Fact]
    public async Task A_call_over_its_timeout_fails_as_timed_out()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var host = await ToolHost.StartAsync(Declare("slow", service.BaseUrl + "/slow", more: new Dictionary<string, string?> { ["Timeout"] = "00:00:00.500" }), cancellationToken: Guard);

        var error = await Assert.ThrowsAsync<ToolException>(async () => await host.Tool("slow").InvokeAsync(Args("{}"), Guard));

        Assert.Equal("'slow' timed out after 0.5 s.", error.Message);
    }

    [Fact]
    public async Task A_body_declared_json_that_does_not_parse_fails_and_plain_text_passes_as_text()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        var settings = Declare("bad_json", service.BaseUrl + "/badjson");
        foreach (var (key, value) in Declare("plain", service.BaseUrl + "/text"))
        {
            settings[key] = value;
        }

        await using var host = await ToolHost.StartAsync(settings, cancellationToken: Guard);

        var error = await Assert.ThrowsAsync<ToolException>(async () => await host.Tool("bad_json").InvokeAsync(Args("{}"), Guard));
        Assert.Contains("declared JSON but is not valid JSON", error.Message, StringComparison.Ordinal);
        Assert.Contains("{\"temperature\": 21, \"sky\":", error.Message, StringComparison.Ordinal);
        Assert.Equal("plain words, not JSON", await host.Tool("plain").InvokeAsync(Args("{}"), Guard));
    }

    [Fact]
    public async Task A_huge_body_is_cut_and_the_result_says_so()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        await using var host = await ToolHost.StartAsync(Declare("big", service.BaseUrl + "/big", more: new Dictionary<string, string?> { ["MaxResponseChars"] = "1000" }), cancellationToken: Guard);

        var result = await host.Tool("big").InvokeAsync(Args("{}"), Guard);

        Assert.StartsWith(new string('a', 1000) + "\n[truncated:", result, StringComparison.Ordinal);
        Assert.DoesNotContain("END", result, StringComparison.Ordinal);
        Assert.True(result.Length < 1200);
    }

    [Fact]
    public async Task An_unreachable_service_fails_saying_so()
    {
        await using var service = await FakeHttpService.StartAsync(Guard);
        var url = service.BaseUrl + "/text";
        await service.DisposeAsync();
        await using var host = await ToolHost.StartAsync(Declare("gone", url, more: new Dictionary<string, string?> { ["Retry"] = "false" }), cancellationToken: Guard);

        var error = await Assert.ThrowsAsync<ToolException>(async () => await host.Tool("gone").InvokeAsync(Args("{}"), Guard));

        Assert.StartsWith("The service behind 'gone' could not be reached", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parameters_written_as_a_configuration_object_become_a_typed_schema()
    {
        await using var host = await ToolHost.StartAsync(Declare("typed", "http://127.0.0.1:9/x", more: new Dictionary<string, string?>
        {
            ["Parameters:type"] = "object",
            ["Parameters:properties:days:type"] = "integer",
            ["Parameters:properties:days:minimum"] = "1",
            ["Parameters:properties:days:description"] = "10",
            ["Parameters:required:0"] = "days",
            ["Parameters:additionalProperties"] = "false",
        }), cancellationToken: Guard);

        var schema = host.Tool("typed").Definition.ParametersSchema;

        Assert.Equal(JsonValueKind.Number, schema.GetProperty("properties").GetProperty("days").GetProperty("minimum").ValueKind);
        Assert.Equal("10", schema.GetProperty("properties").GetProperty("days").GetProperty("description").GetString());
        Assert.Equal(JsonValueKind.False, schema.GetProperty("additionalProperties").ValueKind);
        Assert.Equal(["days"], schema.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Bad_declarations_stop_the_silo_at_start_naming_each_setting()
    {
        var settings = Declare("no_secret", "http://127.0.0.1:9/x", more: new Dictionary<string, string?> { ["Headers:X-Key"] = "${secret:MISSING_KEY}" });
        foreach (var (key, value) in Declare("bad url", "ftp://example/x", "FETCH"))
        {
            settings[key] = value;
        }

        settings["Tools:Http:calculate:Description"] = "shadows a built-in";
        settings["Tools:Http:calculate:Url"] = "http://127.0.0.1:9/x";
        await using var host = await ToolHost.StartAsync(settings, start: false, cancellationToken: Guard);

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<HttpToolsOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("Tools:Http:no_secret:Headers:X-Key names the secret 'MISSING_KEY'", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Tools:Http:bad url: a tool name is", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Tools:Http:bad url:Url must be an absolute http(s) URL", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Tools:Http:bad url:Method must be", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f == "Tools:Http:calculate: 'calculate' is the name of a built-in tool.");
    }
}
