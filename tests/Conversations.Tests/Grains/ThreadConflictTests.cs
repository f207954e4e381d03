using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Tests.Grains;

/// <summary>
/// A second writer of a thread (a split brain, an operator's script) writes first: the grain's next write fails and
/// overwrites nothing, its activation goes, and the next one reads what is stored.
/// </summary>
public sealed class ThreadConflictTests : GrainTestBase
{
    [Fact]
    public async Task A_state_written_behind_the_grains_back_fails_its_next_write_which_overwrites_nothing()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread
        {
            Metadata = new Dictionary<string, string> { ["owner"] = "grain" },
            Messages = [new NewMessage(MessageRoles.User, "Hello")],
        });
        var threadId = created.Id;
        var activation = grains.ActivationOf(thread);
        Assert.NotNull(activation);

        // The other writer reads the stored state and writes a newer one, with the ETag it read.
        var theirs = await grains.ReadStateAsync(threadId);
        var readETag = theirs.ETag;
        theirs.State = theirs.State! with { Metadata = new Dictionary<string, string> { ["owner"] = "other writer" }, UpdatedAt = created.UpdatedAt.AddHours(1) };
        await grains.WriteStateAsync(threadId, theirs);
        Assert.NotEqual(readETag, theirs.ETag);

        // The grain's next write (an append: history rows, then the state) fails with the error callers retry on.
        var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => thread.AppendMessagesAsync([new NewMessage(MessageRoles.Assistant, "Hi")], Ct));
        Assert.Contains("another activation", failure.Message, StringComparison.Ordinal);

        // Nothing of the grain's state was written over the other writer's.
        var stored = await grains.ReadStateAsync(threadId);
        Assert.Equal(theirs.ETag, stored.ETag);
        Assert.Equal("other writer", stored.State!.Metadata["owner"]);
        Assert.Equal(theirs.State!.UpdatedAt, stored.State!.UpdatedAt);

        // The activation went; the next one serves the stored state.
        await activation.Deactivated.WaitAsync(TestTimeouts.Guard());
        var snapshot = await thread.GetAsync(Ct);
        Assert.NotNull(snapshot);
        Assert.Equal("other writer", snapshot.Metadata["owner"]);
        Assert.NotSame(activation, grains.ActivationOf(thread));

        // The failed append's rows were stored before its state write failed; the caller was told it failed, and the
        // new activation removes them, as it removes any rows a write left without their state.
        var messages = await grains.History.ReadMessagesAsync(threadId, 0, 10, Ct);
        Assert.Equal(["Hello"], messages.Select(m => m.Content));
        Assert.Equal(1, snapshot.MessageCount);
        Assert.Single(await grains.ActivationsAsync(thread));
    }

    [Fact]
    public async Task History_rows_written_behind_the_grains_back_fail_its_next_write_which_stores_nothing()
    {
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 2 });
        var (thread, created) = await CreateThreadAsync(grains, new CreateThread { Messages = [new NewMessage(MessageRoles.User, "Hello")] });
        var threadId = created.Id;
        var activation = grains.ActivationOf(thread);
        Assert.NotNull(activation);

        // The other writer did what an activation does: message 2 in the history, then a state that counts it.
        var theirs = await grains.ReadStateAsync(threadId);
        var message = new ThreadMessage(Ids.NewMessageId(), 2, MessageRoles.Assistant, "Theirs", created.UpdatedAt.AddMinutes(1));
        await grains.History.AppendAsync(threadId, [message], [], Ct);
        theirs.State = theirs.State! with { MessageCount = 2, UpdatedAt = message.CreatedAt };
        await grains.WriteStateAsync(threadId, theirs);

        // The grain, still counting one message, appends its own message 2: the history refuses it.
        await Assert.ThrowsAsync<StorageUnavailableException>(() => thread.AppendMessagesAsync([new NewMessage(MessageRoles.Assistant, "Mine")], Ct));

        var stored = await grains.ReadStateAsync(threadId);
        Assert.Equal((theirs.ETag, 2), (stored.ETag, stored.State!.MessageCount));
        Assert.Equal(["Hello", "Theirs"], (await grains.History.ReadMessagesAsync(threadId, 0, 10, Ct)).Select(m => m.Content));

        await activation.Deactivated.WaitAsync(TestTimeouts.Guard());
        var page = await thread.GetMessagesAsync(new MessagePageRequest(null, 10), Ct);
        Assert.NotNull(page);
        Assert.Equal(["Hello", "Theirs"], page.Data.Select(m => m.Content));
        Assert.Equal(2, (await thread.GetAsync(Ct))?.MessageCount);

        // The new activation writes on from what is stored.
        var appended = Assert.IsType<AppendMessagesResult.Appended>(await thread.AppendMessagesAsync([new NewMessage(MessageRoles.User, "Again")], Ct));
        Assert.Equal(3, Assert.Single(appended.Messages).Ordinal);
        Assert.Equal(3, (await grains.ReadStateAsync(threadId)).State!.MessageCount);
    }
}
