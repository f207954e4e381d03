using Conversations.Grains.Abstractions;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Tests.Fakes;

namespace Conversations.Tests.Grains;

/// <summary>One activation per thread, however many callers race for it, from the client and from inside the silos.</summary>
public sealed class ThreadActivationTests : GrainTestBase
{
    private const int Callers = 50;

    [Fact]
    public async Task Concurrent_calls_from_the_client_and_every_silo_reach_one_activation_and_start_one_run()
    {
        await using var model = await FakeOpenAiServer.StartAsync(Ct);
        model.Enqueue(ScriptedResponse.Hang()); // the one run holds the thread while the others arrive
        await using var grains = await StartClusterAsync(new GrainClusterOptions { Silos = 3, Model = model });
        var threadId = Ids.NewThreadId();

        // Every caller's reference: the cluster client's and each silo's own grain factory, round robin.
        var factories = new List<IGrainFactory> { grains.Client };
        factories.AddRange(Enumerable.Range(0, grains.Cluster.Silos.Count).Select(grains.GrainsOf));
        IThreadGrain Caller(int i) => factories[i % factories.Count].GetGrain<IThreadGrain>(threadId);

        // 1. Fifty creates of a thread nobody has activated yet: one creates it.
        var created = await Task.WhenAll(Enumerable.Range(0, Callers).Select(i => Task.Run(() => Caller(i).CreateAsync(
            new CreateThread { Metadata = new Dictionary<string, string> { ["caller"] = i.ToString() } }, Ct))));
        var creator = Assert.Single(created, c => c is not null)!;
        Assert.Single(await grains.ActivationsAsync(Caller(0)));

        // 2. No activation again, then fifty sends and gets at once: they race to activate it as well.
        await grains.Cluster.DeactivateAsync(Caller(0));
        Assert.Empty(await grains.ActivationsAsync(Caller(0)));
        var sends = new List<Task<SendMessageResult>>();
        var gets = new List<Task<ThreadSnapshot?>>();
        for (var i = 0; i < Callers; i++)
        {
            var caller = Caller(i);
            var content = $"message {i}";
            if (i % 5 == 4)
            {
                gets.Add(Task.Run(() => caller.GetAsync(Ct)));
            }
            else
            {
                sends.Add(Task.Run(() => caller.SendMessageAsync(new SendMessage(content), Ct)));
            }
        }

        var sent = await Task.WhenAll(sends);
        var got = await Task.WhenAll(gets);

        var accepted = Assert.IsType<SendMessageResult.Accepted>(Assert.Single(sent, r => r is SendMessageResult.Accepted));
        Assert.All(sent.Where(r => r is not SendMessageResult.Accepted), r => Assert.Equal(new SendMessageResult.Rejected(accepted.RunId), r));
        Assert.All(got, snapshot =>
        {
            Assert.NotNull(snapshot);
            Assert.Equal((threadId, creator.CreatedAt, creator.Metadata["caller"]), (snapshot.Id, snapshot.CreatedAt, snapshot.Metadata["caller"]));
        });

        // One activation served all of them: the management grain counts one, on one silo.
        Assert.Single(await grains.ActivationsAsync(Caller(0)));
        Assert.NotNull(grains.HostOf(Caller(0)));

        // The history holds the one run's user message and the one run; the model was asked once.
        var messages = await grains.History.ReadMessagesAsync(threadId, 0, 100, Ct);
        var user = Assert.Single(messages);
        Assert.Equal((MessageRoles.User, accepted.UserMessageId, accepted.RunId), (user.Role, user.Id, user.RunId));
        Assert.Equal(1, await ScalarAsync<long>(grains.Database, $"SELECT count(*) FROM runs WHERE thread_id = '{threadId}';"));
        Assert.Equal(RunStatuses.Running, (await grains.History.ReadRunAsync(threadId, accepted.RunId, Ct))?.Status);
        await model.WaitForRequestAsync(1, TestTimeouts.Guard());

        // The run ends when asked, and its thread takes the next message.
        Assert.IsType<CancelRunResult.Cancelling>(await Caller(1).CancelRunAsync(accepted.RunId, Ct));
        var end = (await WaitForRunEndAsync(Caller(2), accepted))[^1];
        Assert.Equal(Conversations.Grains.Abstractions.Events.EventTypes.RunCancelled, end.Type);
        Assert.Single(model.Requests);
        Assert.Single(await grains.ActivationsAsync(Caller(0)));
    }
}
