using System.Globalization;

namespace Conversations.Bench;

/// <summary>The command line of a bench run; <see cref="Usage"/> lists every option.</summary>
public sealed class BenchOptions
{
    public const string Usage = """
        Conversations benchmark: starts a fake OpenAI-compatible model, a naive pass-through proxy and the server under
        test as real processes, drives real HTTP against them and writes JSON, Markdown and SVG results.

          dotnet run -c Release --project bench/Conversations.Bench -- [options]

        Options (lists are comma-separated):
          --target embedded|cluster  server under test: the gateway with its embedded silo on SQLite, or the cluster of
                                     deploy/local-cluster.sh (PostgreSQL, 2 silos, 2 gateways)        [embedded]
          --scenarios LIST           ttft,throughput,live,idle,fanout,failover (or all; failover needs
                                     --target cluster and is skipped on embedded)                    [all]
          --runs N                   repeat every scenario N times; tables give the median run       [1]
          --requests N               time-to-first-token requests per path (per run)                 [500]
          --warmup N                 untimed requests per path before measuring                      [50]
          --stream-tokens N          tokens of each relay-throughput stream                          [5000]
          --concurrency LIST         concurrent streams for relay throughput                         [1,10]
          --live LIST                concurrent live runs at --token-rate                            [50,100,200,500]
          --live-tokens N            tokens of each live run                                         [100]
          --token-rate N             tokens per second of a live run or a fan-out run                [20]
          --idle LIST                idle SSE subscribers (one thread each) to measure memory with     [1000]
          --fanout LIST              subscribers of the one fan-out thread                           [1,10,100,1000]
          --fanout-tokens N          tokens of the fan-out run                                       [100]
          --failover-rounds N        failover: rounds, each one silo kill and one gateway kill        [3]
          --failover-watchers N      failover: watchers of the thread whose node is killed           [10]
          --failover-tokens N        failover: tokens of the run (at --token-rate)                   [120]
          --results DIR              where results go (a folder per run is made under it)            [bench/results]
          --sqlite-outside-content-root
                                     embedded: put the SQLite file in a folder of its own instead of the default
                                     data/ folder under the gateway's content root
          --keep-logs                keep the server processes' temporary folders and logs
          --help                     this text
        """;

    public string Target { get; private set; } = "embedded";

    public HashSet<string> Scenarios { get; private set; } = [.. AllScenarios];

    public int Runs { get; private set; } = 1;

    public int Requests { get; private set; } = 500;

    public int Warmup { get; private set; } = 50;

    public int StreamTokens { get; private set; } = 5000;

    public IReadOnlyList<int> Concurrency { get; private set; } = [1, 10];

    public IReadOnlyList<int> Live { get; private set; } = [50, 100, 200, 500];

    public int LiveTokens { get; private set; } = 100;

    public int TokenRate { get; private set; } = 20;

    public IReadOnlyList<int> Idle { get; private set; } = [1000];

    public IReadOnlyList<int> FanOut { get; private set; } = [1, 10, 100, 1000];

    public int FanOutTokens { get; private set; } = 100;

    public int FailoverRounds { get; private set; } = 3;

    public int FailoverWatchers { get; private set; } = 10;

    public int FailoverTokens { get; private set; } = 120;

    public string? ResultsDirectory { get; private set; }

    public bool SqliteOutsideContentRoot { get; private set; }

    public bool KeepLogs { get; private set; }

    public bool Help { get; private set; }

    public static readonly string[] AllScenarios = ["ttft", "throughput", "live", "idle", "fanout", "failover"];

    /// <summary>Parses the arguments; a bad one throws <see cref="ArgumentException"/> naming it.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            int Int() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                ? n
                : throw new ArgumentException($"{name} must be a positive integer.");
            IReadOnlyList<int> Ints()
            {
                var text = Value();
                var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                return values.Length > 0 && values.All(v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                    ? [.. values.Select(v => int.Parse(v, CultureInfo.InvariantCulture))]
                    : throw new ArgumentException($"{name} must be a comma-separated list of positive integers, not '{text}'.");
            }

            switch (name)
            {
                case "--target":
                    options.Target = Value() is "embedded" or "cluster" ? args[i] : throw new ArgumentException("--target must be embedded or cluster.");
                    break;
                case "--scenarios":
                    var scenarios = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    options.Scenarios = scenarios is ["all"] ? [.. AllScenarios] : [.. scenarios];
                    if (options.Scenarios.FirstOrDefault(s => !AllScenarios.Contains(s)) is { } unknown)
                    {
                        throw new ArgumentException($"--scenarios: no scenario is named '{unknown}'; known: {string.Join(", ", AllScenarios)}.");
                    }

                    break;
                case "--runs": options.Runs = Int(); break;
                case "--requests": options.Requests = Int(); break;
                case "--warmup": options.Warmup = Int(); break;
                case "--stream-tokens": options.StreamTokens = Int(); break;
                case "--concurrency": options.Concurrency = Ints(); break;
                case "--live": options.Live = Ints(); break;
                case "--live-tokens": options.LiveTokens = Int(); break;
                case "--token-rate": options.TokenRate = Int(); break;
                case "--idle": options.Idle = Ints(); break;
                case "--fanout": options.FanOut = Ints(); break;
                case "--fanout-tokens": options.FanOutTokens = Int(); break;
                case "--failover-rounds": options.FailoverRounds = Int(); break;
                case "--failover-watchers": options.FailoverWatchers = Int(); break;
                case "--failover-tokens": options.FailoverTokens = Int(); break;
                case "--results": options.ResultsDirectory = Value(); break;
                case "--sqlite-outside-content-root": options.SqliteOutsideContentRoot = true; break;
                case "--keep-logs": options.KeepLogs = true; break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new ArgumentException($"unknown option '{name}' (see --help).");
            }
        }

        return options;
    }

    /// <summary>The options as given, for the results' record of what ran.</summary>
    public Dictionary<string, object> Describe() => new()
    {
        ["target"] = Target,
        ["scenarios"] = AllScenarios.Where(Scenarios.Contains).ToArray(),
        ["runs"] = Runs,
        ["requests"] = Requests,
        ["warmup"] = Warmup,
        ["streamTokens"] = StreamTokens,
        ["concurrency"] = Concurrency,
        ["live"] = Live,
        ["liveTokens"] = LiveTokens,
        ["tokenRate"] = TokenRate,
        ["idle"] = Idle,
        ["fanout"] = FanOut,
        ["fanoutTokens"] = FanOutTokens,
        ["failoverRounds"] = FailoverRounds,
        ["failoverWatchers"] = FailoverWatchers,
        ["failoverTokens"] = FailoverTokens,
        ["sqliteOutsideContentRoot"] = SqliteOutsideContentRoot,
    };
}
