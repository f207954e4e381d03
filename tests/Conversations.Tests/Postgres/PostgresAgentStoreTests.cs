using Conversations.Grains.Abstractions.Agents;
using Conversations.Silo.Storage.Postgres;

namespace Conversations.Tests.Postgres;

public sealed class PostgresAgentStoreTests : PostgresTestBase
{
    [Fact]
    public async Task Agents_round_trip_replace_by_name_and_list_in_name_order()
    {
        var agents = new PostgresAgentStore(await Fixture.OpenMigratedAsync());
        var writer = new AgentDefinition("writer")
        {
            Instructions = "Write \"well\" ✓", Model = "gpt-test", Tools = ["calculate", "get_time"], MaxParallelTools = 2,
            ToolTimeout = TimeSpan.FromMilliseconds(1500), MaxDepth = 3, MultitaskStrategy = MultitaskStrategies.Enqueue,
            Temperature = 0.25, MaxTokens = 512,
        };
        Assert.Empty(await agents.ListAsync(Ct));

        await agents.UpsertAsync(writer, Ct);
        await agents.UpsertAsync(new AgentDefinition("Zed"), Ct);
        await agents.UpsertAsync(new AgentDefinition("alpha"), Ct);
        await agents.UpsertAsync(new AgentDefinition("alpha") { MaxDepth = 5 }, Ct);

        var read = await agents.GetAsync("writer", Ct);
        Assert.Equal(writer with { Tools = null }, read! with { Tools = null });
        Assert.Equal(writer.Tools, read.Tools);
        Assert.Equal(5, (await agents.GetAsync("alpha", Ct))!.MaxDepth);
        Assert.Null(await agents.GetAsync("nobody", Ct));
        Assert.Equal(["Zed", "alpha", "writer"], (await agents.ListAsync(Ct)).Select(a => a.Name)); // ordinal
        Assert.Equal(8, (await new PostgresAgentStore(await Fixture.OpenMigratedAsync()).GetAsync("Zed", Ct))!.MaxDepth);
    }

    [Fact]
    public async Task Invalid_arguments_are_rejected()
    {
        var agents = new PostgresAgentStore(await Fixture.OpenMigratedAsync());

        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await agents.UpsertAsync(new AgentDefinition(" "), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await agents.GetAsync("", Ct));

        Assert.Empty(await agents.ListAsync(Ct));
    }
}
