using System.Text.Json;
using System.Text.Json.Nodes;
using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Serialization;
using Conversations.Grains.Abstractions.Threads;
using Conversations.Silo.Storage.Postgres;
using Conversations.Tests.Storage;
using Npgsql;

namespace Conversations.Tests.Postgres;

public sealed class PostgresThreadStoreTests : ThreadStoreContract
{
    private PostgresFixture? _fixture;

    protected override Type ConstraintViolation => typeof(PostgresException);

    private PostgresFixture Fixture => _fixture ?? throw new InvalidOperationException("Not initialized.");

    public override async ValueTask InitializeAsync() => _fixture = await PostgresFixture.CreateAsync();

    public override async ValueTask DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }
    }

    protected override async Task<IThreadStore> OpenStoreAsync() => new PostgresThreadStore(await Fixture.OpenMigratedAsync());

    /// <summary>jsonb keeps values, not key order: the same JSON value, compared by structure.</summary>
    protected override void AssertSameState(ThreadGrainState expected, ThreadGrainState actual)
    {
        var expectedJson = JsonSerializer.SerializeToNode(expected, ContractJson.Options);
        var actualJson = JsonSerializer.SerializeToNode(actual, ContractJson.Options);
        Assert.True(JsonNode.DeepEquals(expectedJson, actualJson), $"Expected {expectedJson?.ToJsonString()}, read {actualJson?.ToJsonString()}.");
    }
}
