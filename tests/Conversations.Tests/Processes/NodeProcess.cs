using System.Diagnostics;
using System.Net;
using System.Text;

namespace Conversations.Tests.Processes;

/// <summary>
/// A node of ours as a real OS process (<c>dotnet Conversations.Gateway.dll</c>) on a loopback port, with settings
/// passed by environment variables, its output captured, and a kill that is a real SIGKILL.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private NodeProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
    }

    public Uri BaseAddress { get; }

    /// <summary>The OS process id, for reading <c>/proc</c>.</summary>
    public int ProcessId => _process.Id;

    public HttpClient Client { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts the gateway (with its embedded silo unless settings say otherwise) and waits until /health answers.</summary>
    public static Task<NodeProcess> StartGatewayAsync(IDictionary<string, string?> environment, CancellationToken cancellationToken) =>
        StartAsync("Conversations.Gateway.dll", "health", environment, cancellationToken);

    /// <summary>
    /// Starts a cluster silo (settings <c>Cluster__*</c> in <paramref name="environment"/>; it advertises 127.0.0.1
    /// with free silo and gateway ports) and waits until its /health/ready answers.
    /// </summary>
    public static Task<NodeProcess> StartSiloAsync(IDictionary<string, string?> environment, CancellationToken cancellationToken)
    {
        var silo = new Dictionary<string, string?>
        {
            ["Cluster__AdvertisedAddress"] = "127.0.0.1",
            ["Cluster__SiloPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster__GatewayPort"] = LoopbackPorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in environment)
        {
            silo[key] = value;
        }

        return StartAsync("Conversations.Silo.dll", "health/ready", silo, cancellationToken);
    }

    private static async Task<NodeProcess> StartAsync(string assembly, string healthPath, IDictionary<string, string?> environment, CancellationToken cancellationToken)
    {
        var directory = AppContext.BaseDirectory;
        var port = LoopbackPorts.Next();
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(directory, assembly));
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{port}");
        info.Environment["OPENAI_API_KEY"] = "";
        info.Environment["OPENAI_BASE_URL"] = "";
        info.Environment["OPENAI_MODEL"] = "";
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var node = new NodeProcess(process, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await node.WaitUntilHealthyAsync(healthPath, cancellationToken);
        return node;
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await KillAsync();
        _process.Dispose();
    }

    private async Task WaitUntilHealthyAsync(string healthPath, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The node exited with code {_process.ExitCode} before it was healthy:\n{Output}");
            }

            try
            {
                using var response = await Client.GetAsync(healthPath, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

}
