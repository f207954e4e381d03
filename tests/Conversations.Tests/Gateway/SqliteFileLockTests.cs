using System.Net;
using Conversations.Tests.Processes;

namespace Conversations.Tests.Gateway;

/// <summary>
/// Two embedded server processes on one SQLite file: the second refuses to start, naming the file; the first goes on.
/// Embedded in both passes: real gateway processes with their co-hosted silos.
/// </summary>
public sealed class SqliteFileLockTests
{
    private static CancellationToken Guard => TestTimeouts.Guard();

    [Fact]
    public async Task A_second_embedded_server_on_the_same_file_refuses_to_start_and_the_first_goes_on()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
        var database = Path.Combine(directory, "shared.db");
        var environment = new Dictionary<string, string?> { ["Storage__SqlitePath"] = database, ["DemoModel__TokenDelay"] = "00:00:00" };
        try
        {
            await using (var first = await NodeProcess.StartGatewayAsync(environment, Guard))
            {
                var threadId = await first.Client.CreateThreadAsync(cancellationToken: Guard);

                var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => NodeProcess.StartGatewayAsync(environment, Guard));

                Assert.Contains("Another Conversations server is using the database file", refused.Message, StringComparison.Ordinal);
                Assert.Contains(database, refused.Message, StringComparison.Ordinal);
                using var stillServing = await first.Client.PostAsJsonAsync($"threads/{threadId}/messages", new { content = "What is 2 + 2?" }, Guard);
                Assert.Equal(HttpStatusCode.OK, stillServing.StatusCode);
            }

            // Once the first has stopped, the file is free for the next, with what the first stored.
            await using var next = await NodeProcess.StartGatewayAsync(environment, Guard);
            using var health = await next.Client.GetAsync("health", Guard);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        finally
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }
}
