using Conversations.Silo.Storage.Postgres;

namespace Conversations.Tests.Postgres;

/// <summary>A test class with a <see cref="PostgresFixture"/> (a schema of its own) per test.</summary>
public abstract class PostgresTestBase : IAsyncLifetime
{
    private PostgresFixture? _fixture;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal PostgresFixture Fixture => _fixture ?? throw new InvalidOperationException("Not initialized.");

    public async ValueTask InitializeAsync() => _fixture = await PostgresFixture.CreateAsync();

    public async ValueTask DisposeAsync()
    {
        if (_fixture is not null)
        {
            await _fixture.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Runs SQL on <paramref name="database"/>'s schema.</summary>
    internal static async Task ExecuteAsync(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>The first column of every row a query returns.</summary>
    internal static async Task<List<T>> ListAsync<T>(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var values = new List<T>();
        while (await reader.ReadAsync(Ct))
        {
            values.Add(reader.GetFieldValue<T>(0));
        }

        return values;
    }

    /// <summary>The first column of the one row a query returns.</summary>
    internal static async Task<T> ScalarAsync<T>(PostgresDatabase database, string sql) => Assert.Single(await ListAsync<T>(database, sql));

    /// <summary>Polls <paramref name="condition"/> every 50 ms until it holds; fails the test after <see cref="TestTimeouts.Default"/>.</summary>
    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, Func<string>? state = null)
    {
        var guard = TestTimeouts.Guard();
        while (!await condition())
        {
            try
            {
                await Task.Delay(50, guard);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                Assert.Fail($"Timed out waiting until {what}.{(state is null ? "" : " " + state())}");
            }
        }
    }
}
