using Conversations.Bench;
using Conversations.Bench.FakeModel;
using Conversations.Bench.NaiveProxy;

// One program, three roles: the bench itself (default), and the two servers it starts as child processes of its own,
// so that each one's CPU time can be read from /proc apart from the client's.
return args.FirstOrDefault() switch
{
    FakeModelServer.Command => await FakeModelServer.RunAsync(args[1..]),
    NaiveProxyServer.Command => await NaiveProxyServer.RunAsync(args[1..]),
    _ => await BenchRun.RunAsync(args),
};
