namespace Conversations.ServiceDefaults.Hosting;

/// <summary>
/// The command line every process of ours starts its host with. The default host reloads appsettings files on change,
/// and to notice a change it watches the whole content root, subfolders included — the embedded server's SQLite
/// files live in <c>data/</c> under it, so every write of the database woke that watcher (14 % of a core under load,
/// issue "Benchmarks"). Nothing of ours reads settings again after start, so reloading is off unless asked for with
/// <c>hostBuilder:reloadConfigOnChange=true</c> (argument, or environment <c>DOTNET_hostBuilder__reloadConfigOnChange</c>).
/// </summary>
public static class HostArguments
{
    public const string ReloadConfigOnChange = "hostBuilder:reloadConfigOnChange";

    /// <summary><paramref name="args"/>, led by <c>--hostBuilder:reloadConfigOnChange=false</c> unless the operator set it.</summary>
    public static string[] WithoutConfigurationReload(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var chosen = args.Any(a => a.Contains(ReloadConfigOnChange, StringComparison.OrdinalIgnoreCase))
            || Environment.GetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange") is not null
            || Environment.GetEnvironmentVariable("ASPNETCORE_hostBuilder__reloadConfigOnChange") is not null;
        return chosen ? args : [$"--{ReloadConfigOnChange}=false", .. args];
    }
}
