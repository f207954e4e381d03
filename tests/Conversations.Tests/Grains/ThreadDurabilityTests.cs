using Conversations.Grains.Abstractions.Events;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Fakes;
using Conversations.Tests.Storage;

namespace Conversations.Tests.Grains;

/// <summary>What a thread keeps when its activation goes: by collection, and when the silo hosting it stops.</summary>
public sealed class ThreadDurabilityTests : GrainTestBase
{
    [Fact]
    public async Task State_history_runs_and_event_numbering_survive_a_deactivation_and_the_stop_of_the_hosting_silo()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(
            ScriptedResponse.Text("First ", "answer."),
            ScriptedResponse.Text("Second ", "answer."),
            ScriptedResponse.Text("Third ", "answer."));
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 3, Model = model });
        var (thread, _) = await CreateThreadAsync(grains, new CreateThread
        {
            Metadata = new Dictionary<string, string> { ["title"] = "Trip to Lisbon ✓", ["empty"] = "" },
            Messages = [new NewMessage(MessageRoles.System, "Be brief.")],
        });
        var runs = new List<string>();

        var first = await SendAsync(thread, "One?");
        await WaitForRunEndAsync(thread, first);
        runs.Add(first.RunId);
        var before = await ObserveAsync(grains, thread, runs);
        Assert.Equal(3, before.Snapshot.MessageCount);
        Assert.Equal(1, first.StartSequence);

        // 1. The activation is collected (the management grain's forced collection of idle activations).
        var activation = grains.ActivationOf(thread);
        Assert.NotNull(activation);
        await grains.Management.ForceActivationCollection(TimeSpan.Zero, Ct);
        await activation.Deactivated.WaitAsync(TestTimeouts.Guard());
        Assert.Empty(await grains.ActivationsAsync(thread));

        var reactivated = await ObserveAsync(grains, thread, runs);
        AssertSame(before, reactivated);

        // Its events go on after the last one: the range the first activation reserved and did not use was handed back.
        var second = await SendAsync(thread, "Two?");
        Assert.Equal(before.Events[^1].Sequence + 1, second.StartSequence);
        await WaitForRunEndAsync(thread, second);
        runs.Add(second.RunId);
        before = await ObserveAsync(grains, thread, runs);
        Assert.Equal(5, before.Snapshot.MessageCount);

        // 2. The silo hosting it stops; the thread answers from another silo.
        var host = grains.HostOf(thread);
        Assert.NotNull(host);
        await grains.Cluster.StopSiloAsync(host, Ct);
        Assert.DoesNotContain(grains.Cluster.Silos, s => s.SiloAddress.Equals(host.SiloAddress));

        var moved = await ObserveAsync(grains, thread, runs);
        AssertSame(before, moved);
        var newHost = grains.HostOf(thread);
        Assert.NotNull(newHost);
        Assert.NotEqual(host.SiloAddress, newHost.SiloAddress);

        var third = await SendAsync(thread, "Three?");
        Assert.Equal(before.Events[^1].Sequence + 1, third.StartSequence);
        await WaitForRunEndAsync(thread, third);
        runs.Add(third.RunId);
        var after = await ObserveAsync(grains, thread, runs);

        // Every event of the three runs, numbered 1, 2, 3, … with no number used twice.
        Assert.Equal(Enumerable.Range(1, after.Events.Count).Select(i => (long)i), Sequences(after.Events));
        Assert.Equal(Sequences(after.Events), Sequences(await grains.StoredEventsAsync(thread.GetPrimaryKeyString())));
        Assert.Equal(3, after.Events.Count(e => e is RunStarted));
        Assert.Equal(runs, after.Events.OfType<RunCompleted>().Select(e => e.RunId));
        Assert.Equal(
            ["Be brief.", "One?", "First answer.", "Two?", "Second answer.", "Three?", "Third answer."],
            after.Messages.Select(m => m.Content));
        Assert.Equal(Enumerable.Range(1, 7), after.Messages.Select(m => m.Ordinal));
        Assert.Equal((7, null, third.RunId), (after.Snapshot.MessageCount, after.Snapshot.ActiveRunId, after.Snapshot.LastRunId));
        Assert.All(after.Runs, r => Assert.Equal(RunStatuses.Completed, r.Status));
    }

    /// <summary>Everything the thread answers about itself, through its grain.</summary>
    private static async Task<Observed> ObserveAsync(GrainCluster grains, IThreadGrain thread, IReadOnlyList<string> runIds)
    {
        var snapshot = await thread.GetAsync(Ct);
        Assert.NotNull(snapshot);
        var page = await thread.GetMessagesAsync(new MessagePageRequest(null, 100), Ct);
        Assert.NotNull(page);
        var runs = new List<RunRecord>();
        foreach (var runId in runIds)
        {
            var run = await thread.GetRunAsync(runId, Ct);
            Assert.NotNull(run);
            runs.Add(run);
        }

        var events = await thread.ReadEventsAsync(0, long.MaxValue, 1000, Ct);
        Assert.Single(await grains.ActivationsAsync(thread));
        return new Observed(snapshot, page.Data, runs, events);
    }

    private static void AssertSame(Observed expected, Observed actual)
    {
        Assert.Equal(
            (expected.Snapshot.Id, expected.Snapshot.CreatedAt, expected.Snapshot.UpdatedAt, expected.Snapshot.MessageCount, expected.Snapshot.ActiveRunId, expected.Snapshot.LastRunId),
            (actual.Snapshot.Id, actual.Snapshot.CreatedAt, actual.Snapshot.UpdatedAt, actual.Snapshot.MessageCount, actual.Snapshot.ActiveRunId, actual.Snapshot.LastRunId));
        Assert.Equal(expected.Snapshot.Metadata.OrderBy(p => p.Key), actual.Snapshot.Metadata.OrderBy(p => p.Key));
        StorageSamples.AssertJsonEqual(expected.Messages, actual.Messages);
        StorageSamples.AssertJsonEqual(expected.Runs, actual.Runs);
        Assert.Equal(Sequences(expected.Events), Sequences(actual.Events));
        Assert.Equal(expected.Events.Select(e => (e.Type, e.RunId)), actual.Events.Select(e => (e.Type, e.RunId)));
    }

    private sealed record Observed(ThreadSnapshot Snapshot, IReadOnlyList<ThreadMessage> Messages, List<RunRecord> Runs, List<ThreadEvent> Events);
}
