using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Conversations.Bench.FakeModel;
using Conversations.Bench.Reporting;

namespace Conversations.Bench.Scenarios;

/// <summary>
/// One failover round: which node was SIGKILLed, how long each watcher took to hear of it and to see the run end, and
/// whether what each watcher read equals what the thread stored.
/// </summary>
/// <param name="Kind"><c>silo</c> (the silo hosting the thread) or <c>gateway</c> (the gateway the watchers were on).</param>
/// <param name="Round">The round, from 1.</param>
/// <param name="Node">The node killed (<c>silo-2</c>, <c>gateway-1</c>, …).</param>
/// <param name="Watchers">How many watched the thread.</param>
/// <param name="ToldMs">Silo: SIGKILL → the watcher's first event saying so (<c>agent.status</c> <c>resuming</c>, or
/// <c>run.failed</c>). Gateway: SIGKILL → the watcher's first event from the other gateway after it reconnected with
/// <c>Last-Event-ID</c>.</param>
/// <param name="EndMs">SIGKILL → the watcher's terminal run event.</param>
/// <param name="Consistent">Watchers whose text equals the stored reply, with event ids strictly increasing.</param>
/// <param name="Outcome">The watchers' terminal events, counted.</param>
/// <param name="RestartSeconds">From starting the killed node again to its readiness.</param>
/// <param name="Problems">Watchers never told, or that saw nothing after reconnecting.</param>
public sealed record FailoverRow(
    string Kind, int Round, string Node, int Watchers, Summary ToldMs, Summary EndMs, int Consistent, string Outcome,
    double RestartSeconds, IReadOnlyList<string> Problems);

/// <summary>
/// Scenario 5 (cluster only): a run streams <c>--failover-tokens</c> tokens at <c>--token-rate</c> to
/// <c>--failover-watchers</c> watchers; after 20 deltas the bench SIGKILLs (a) the silo whose log says it started the
/// run, watchers spread over both gateways, or (b) the gateway every watcher is on, and each watcher reconnects to the
/// other gateway from its last event id, as an <c>EventSource</c> would. The killed node is started again before the
/// next round, so every round has the full cluster.
/// </summary>
public static class Failover
{
    private const int KillAfterDeltas = 20;
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromMinutes(2);

    public static async Task<IReadOnlyList<FailoverRow>> RunAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var server = context.Server;
        if (server.ClusterState is null || server.Gateways.Count < 2)
        {
            Console.WriteLine("    failover: needs --target cluster (2 silos, 2 gateways); skipped");
            return [];
        }

        var rows = new List<FailoverRow>();
        for (var round = 1; round <= context.Options.FailoverRounds; round++)
        {
            foreach (var kind in new[] { "silo", "gateway" })
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(RoundTimeout);
                var row = kind == "silo"
                    ? await SiloRoundAsync(context, round, timeout.Token)
                    : await GatewayRoundAsync(context, round, timeout.Token);
                Console.WriteLine(
                    $"    failover {kind} #{round} ({row.Node}): told p50 {row.ToldMs.P50:F0} max {row.ToldMs.Max:F0} ms, run end p50 {row.EndMs.P50:F0} ms, "
                    + $"{row.Consistent}/{row.Watchers} watchers equal the stored reply, {row.Outcome}, restarted in {row.RestartSeconds:F1} s"
                    + (row.Problems.Count > 0 ? $"; problems: {string.Join("; ", row.Problems)}" : ""));
                rows.Add(row);
            }
        }

        return rows;
    }

    private static async Task<FailoverRow> SiloRoundAsync(BenchContext context, int round, CancellationToken cancellationToken)
    {
        var server = context.Server;
        var gateways = server.Gateways;
        var thread = await context.Client.CreateThreadAsync(gateways[0], cancellationToken);
        var watchers = Enumerable.Range(0, context.Options.FailoverWatchers).Select(_ => new Watcher()).ToArray();
        var reading = new List<Task>();
        for (var i = 0; i < watchers.Length; i++)
        {
            var watcher = watchers[i];
            var response = await OpenAsync(context, gateways[i % gateways.Count], thread, null, cancellationToken);
            reading.Add(Task.Run(() => watcher.ReadAsync(response, cancellationToken), cancellationToken));
        }

        await SendAsync(context, gateways[0], thread, cancellationToken);
        await watchers[0].Progress.Task.WaitAsync(cancellationToken);
        var silo = await HostOfAsync(context, thread, cancellationToken);
        var killedAt = server.Kill(silo);
        await Task.WhenAll(reading);
        var restart = Stopwatch.StartNew();
        await server.RestartAsync(silo, cancellationToken);
        var restartSeconds = restart.Elapsed.TotalSeconds;

        var stored = await StoredReplyAsync(context, gateways[1], thread, cancellationToken);
        var problems = new List<string>();
        var consistent = 0;
        var told = new List<double>();
        var ended = new List<double>();
        foreach (var (watcher, index) in watchers.Select((w, i) => (w, i)))
        {
            var after = watcher.Events.Where(e => e.At > killedAt).ToList();
            var notice = after.FirstOrDefault(e => (e.Type == "agent.status" && e.Status == "resuming") || e.Type == "run.failed");
            if (notice.Type is null)
            {
                problems.Add($"watcher {index} was never told");
            }
            else
            {
                told.Add(Numbers.Ms(killedAt, notice.At));
            }

            if (watcher.Terminal is { } terminal)
            {
                ended.Add(Numbers.Ms(killedAt, terminal.At));
            }

            // What the resumed run streamed is what the thread stored; the dead attempt's partial text is not kept.
            var lastResume = watcher.Events.FindLastIndex(e => e.Type == "agent.status" && e.Status == "resuming");
            var text = string.Concat(watcher.Events.Skip(lastResume + 1).Where(e => e.Type == "text.delta").Select(e => e.Text));
            if (text == stored && watcher.Increasing())
            {
                consistent++;
            }
        }

        return new FailoverRow(
            "silo", round, silo, watchers.Length, Summary.Of(told), Summary.Of(ended), consistent, Outcomes(watchers), restartSeconds, problems);
    }

    private static async Task<FailoverRow> GatewayRoundAsync(BenchContext context, int round, CancellationToken cancellationToken)
    {
        var server = context.Server;
        var (victim, survivor) = (server.Gateways[round % 2], server.Gateways[(round + 1) % 2]);
        var name = server.NodeNamed(victim);
        var thread = await context.Client.CreateThreadAsync(survivor, cancellationToken);
        var watchers = Enumerable.Range(0, context.Options.FailoverWatchers).Select(_ => new Watcher()).ToArray();
        var firsts = new List<Task>();
        foreach (var watcher in watchers)
        {
            var response = await OpenAsync(context, victim, thread, null, cancellationToken);
            firsts.Add(Task.Run(() => watcher.ReadAsync(response, cancellationToken), cancellationToken));
        }

        await SendAsync(context, survivor, thread, cancellationToken);
        await watchers[0].Progress.Task.WaitAsync(cancellationToken);
        var killedAt = server.Kill(name);
        var resumed = watchers.Select(async watcher =>
        {
            await firsts[Array.IndexOf(watchers, watcher)];
            if (watcher.Terminal is null)
            {
                // As an EventSource does: open the stream again, on the gateway that lives, from the last id seen.
                watcher.ReconnectedAt = watcher.Events.Count;
                var response = await OpenAsync(context, survivor, thread, watcher.LastId, cancellationToken);
                await watcher.ReadAsync(response, cancellationToken);
            }
        }).ToArray();
        await Task.WhenAll(resumed);
        var restart = Stopwatch.StartNew();
        await server.RestartAsync(name, cancellationToken);
        var restartSeconds = restart.Elapsed.TotalSeconds;

        var stored = await StoredReplyAsync(context, survivor, thread, cancellationToken);
        var problems = new List<string>();
        var consistent = 0;
        var told = new List<double>();
        var ended = new List<double>();
        foreach (var (watcher, index) in watchers.Select((w, i) => (w, i)))
        {
            if (watcher.ReconnectedAt is { } at && at < watcher.Events.Count)
            {
                told.Add(Numbers.Ms(killedAt, watcher.Events[at].At));
            }
            else
            {
                problems.Add($"watcher {index} saw nothing from the other gateway");
            }

            if (watcher.Terminal is { } terminal)
            {
                ended.Add(Numbers.Ms(killedAt, terminal.At));
            }

            var text = string.Concat(watcher.Events.Where(e => e.Type == "text.delta").Select(e => e.Text));
            if (text == stored && watcher.Increasing())
            {
                consistent++;
            }
        }

        return new FailoverRow(
            "gateway", round, name, watchers.Length, Summary.Of(told), Summary.Of(ended), consistent, Outcomes(watchers), restartSeconds, problems);
    }

    private static string Outcomes(IEnumerable<Watcher> watchers) =>
        string.Join(", ", watchers.GroupBy(w => w.Terminal?.Type ?? "no end").Select(g => $"{g.Key} ×{g.Count()}"));

    private static async Task SendAsync(BenchContext context, Uri gateway, string thread, CancellationToken cancellationToken)
    {
        var prompt = FakeModelServer.Prompt(context.Options.FailoverTokens, 1000.0 / context.Options.TokenRate);
        using var sent = await context.Client.Http.PostAsJsonAsync(
            new Uri(gateway, $"threads/{thread}/messages"), new { content = prompt, wait = false }, cancellationToken);
        sent.EnsureSuccessStatusCode();
    }

    private static async Task<HttpResponseMessage> OpenAsync(BenchContext context, Uri gateway, string thread, string? lastEventId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway, $"threads/{thread}/events"));
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        var response = await context.Client.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        return response;
    }

    /// <summary>The silo whose log says it started a run on the thread: it hosts the thread's activation.</summary>
    private static async Task<string> HostOfAsync(BenchContext context, string thread, CancellationToken cancellationToken)
    {
        var marker = $"started on thread {thread}";
        while (true)
        {
            foreach (var (name, _) in context.Server.Nodes.Where(n => n.Name.StartsWith("silo-", StringComparison.Ordinal)))
            {
                await using var file = new FileStream(context.Server.NodeLog(name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(file);
                if ((await reader.ReadToEndAsync(cancellationToken)).Contains(marker, StringComparison.Ordinal))
                {
                    return name;
                }
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task<string> StoredReplyAsync(BenchContext context, Uri gateway, string thread, CancellationToken cancellationToken)
    {
        using var response = await context.Client.Http.GetAsync(new Uri(gateway, $"threads/{thread}/messages"), cancellationToken);
        response.EnsureSuccessStatusCode();
        using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
        return body.RootElement.GetProperty("data").EnumerateArray()
            .LastOrDefault(m => m.GetProperty("role").ValueEquals("assistant")) is { ValueKind: JsonValueKind.Object } reply
            ? reply.GetProperty("content").GetString() ?? ""
            : "";
    }

    private readonly record struct Seen(string Type, string? Id, string? Text, string? Status, long At);

    /// <summary>One watcher's events across its connections, with the monotonic time each was parsed.</summary>
    private sealed class Watcher
    {
        private int _deltas;

        public List<Seen> Events { get; } = [];

        public TaskCompletionSource Progress { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Seen? Terminal { get; private set; }

        public int? ReconnectedAt { get; set; }

        public string? LastId => Events.LastOrDefault(e => e.Id is not null).Id;

        /// <summary>Event ids strictly increasing across every connection: nothing seen twice, nothing out of order.</summary>
        public bool Increasing()
        {
            var ids = Events.Where(e => e.Id is not null).Select(e => long.Parse(e.Id!, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return ids.Zip(ids.Skip(1)).All(p => p.Second > p.First);
        }

        /// <summary>Reads until a run ends or the connection breaks (a killed gateway).</summary>
        public async Task ReadAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            using (response)
            {
                try
                {
                    await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                    await foreach (var item in SseParser.Create(body, Parse).EnumerateAsync(cancellationToken))
                    {
                        var (type, text, status) = item.Data;
                        var seen = new Seen(type, item.EventId, text, status, Stopwatch.GetTimestamp());
                        Events.Add(seen);
                        if (type == "text.delta" && ++_deltas == KillAfterDeltas)
                        {
                            Progress.TrySetResult();
                        }

                        if (type is "run.completed" or "run.failed" or "run.cancelled")
                        {
                            Terminal = seen;
                            return;
                        }
                    }
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                }
            }
        }

        private static (string Type, string? Text, string? Status) Parse(string eventType, ReadOnlySpan<byte> data)
        {
            if (eventType is not ("text.delta" or "agent.status"))
            {
                return (eventType, null, null);
            }

            var reader = new Utf8JsonReader(data);
            string? text = null, status = null;
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1)
                {
                    var isText = reader.ValueTextEquals("text"u8);
                    var isStatus = reader.ValueTextEquals("status"u8);
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        text = isText ? reader.GetString() : text;
                        status = isStatus ? reader.GetString() : status;
                    }
                }
            }

            return (eventType, text, status);
        }
    }
}
