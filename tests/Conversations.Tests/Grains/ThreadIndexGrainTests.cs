using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Tests.Grains;

/// <summary>The thread grain keeps its row of the thread index: written on changes, repaired on activation, erased with the thread.</summary>
public sealed class ThreadIndexGrainTests : GrainTestBase
{
    private static async Task<ThreadSummary?> ListedAsync(GrainCluster grains, string threadId)
    {
        var page = await grains.Client.GetGrain<IThreadDirectoryGrain>(IThreadDirectoryGrain.Key).ListAsync(new ThreadListQuery(100) { AnyOwner = true }, Ct);
        return page.Data.SingleOrDefault(t => t.Id == threadId);
    }

    [Fact]
    public async Task A_thread_missing_from_the_index_is_indexed_again_when_it_next_activates()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 1 });
        var (grain, snapshot) = await CreateThreadAsync(grains, new CreateThread
        {
            Owner = "user:ana",
            Metadata = new Dictionary<string, string> { ["project"] = "x" },
            Messages = [new NewMessage(MessageRoles.User, "Plan the trip to Lisbon"), new NewMessage(MessageRoles.Assistant, "Sure: when?")],
        });
        Assert.NotNull(await ListedAsync(grains, snapshot.Id));

        // As for a thread created before the index existed: no row, and an activation that comes back later.
        await ExecuteAsync(grains.Database, $"DELETE FROM thread_index WHERE id = '{snapshot.Id}';");
        await grains.Cluster.DeactivateAsync(grain);
        Assert.Null(await ListedAsync(grains, snapshot.Id));
        Assert.NotNull(await grain.GetAsync(Ct));

        var listed = await ListedAsync(grains, snapshot.Id);
        Assert.NotNull(listed);
        Assert.Equal(("user:ana", "Plan the trip to Lisbon", "Sure: when?", 2), (listed.Owner, listed.Title, listed.LastMessagePreview, listed.MessageCount));
        Assert.Equal("x", listed.Metadata["project"]);
    }

    [Fact]
    public async Task Metadata_changes_reach_the_index_and_a_deleted_thread_leaves_it_and_answers_as_missing()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 1 });
        var (grain, snapshot) = await CreateThreadAsync(grains, new CreateThread { Metadata = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" } });

        var updated = await grain.UpdateMetadataAsync(new Dictionary<string, string?> { ["b"] = null, ["title"] = "Renamed" }, Ct);

        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["title"] = "Renamed" }, updated!.Metadata);
        var listed = await ListedAsync(grains, snapshot.Id);
        Assert.Equal("Renamed", listed!.Title);
        Assert.Equal(updated.UpdatedAt, listed.UpdatedAt, TimeSpan.FromMilliseconds(1));

        Assert.True(await grain.DeleteAsync(Ct));
        Assert.False(await grain.DeleteAsync(Ct));
        Assert.Null(await grain.GetAsync(Ct));
        Assert.Null(await grain.UpdateMetadataAsync(new Dictionary<string, string?> { ["a"] = "2" }, Ct));
        Assert.Null(await ListedAsync(grains, snapshot.Id));
        var state = await grains.ReadStateAsync(snapshot.Id);
        Assert.False(state.RecordExists);
    }
}
