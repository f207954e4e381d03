using System.Data.Common;
using Conversations.Grains.Abstractions.Threads;
using Orleans.Storage;

namespace Conversations.Silo.Storage;

/// <summary>
/// Wraps a grain storage provider so its driver's exceptions never reach a caller: anything but an ETag conflict
/// becomes <see cref="StorageUnavailableException"/>, which Orleans can send to clients (a driver's exception
/// type cannot be deserialized there). Activations read state before any grain code runs, so this is the one place
/// a failing read can be caught.
/// </summary>
internal sealed class StorageFailureMapping(string name, IGrainStorage inner) : IGrainStorage
{
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MapAsync(() => inner.ReadStateAsync(stateName, grainId, grainState), "read", stateName, grainId);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MapAsync(() => inner.WriteStateAsync(stateName, grainId, grainState), "write", stateName, grainId);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MapAsync(() => inner.ClearStateAsync(stateName, grainId, grainState), "clear", stateName, grainId);

    private async Task MapAsync(Func<Task> operation, string verb, string stateName, GrainId grainId)
    {
        try
        {
            await operation().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not (InconsistentStateException or StorageUnavailableException or OperationCanceledException))
        {
            throw new StorageUnavailableException($"The {name} storage could not {verb} the {stateName} state of {grainId}: {Describe(ex)}");
        }
    }

    /// <summary>The innermost driver failure's type and message, for logs and clients (no connection string in it).</summary>
    internal static string Describe(Exception exception)
    {
        var cause = exception;
        while (cause.InnerException is { } inner && cause is not DbException)
        {
            cause = inner;
        }

        return $"{cause.GetType().Name}: {cause.Message}";
    }
}

/// <summary>
/// The same rule for grain calls: a driver exception that escapes a grain method (a reminder write, say) is turned
/// into <see cref="StorageUnavailableException"/> before Orleans sends the answer.
/// </summary>
internal sealed class StorageFailureCallFilter : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            await context.Invoke().ConfigureAwait(false);
        }
        catch (Exception ex) when (IsDriverFailure(ex))
        {
            throw new StorageUnavailableException($"The storage failed: {StorageFailureMapping.Describe(ex)}");
        }
    }

    private static bool IsDriverFailure(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            if (e is DbException || e.GetType().Namespace?.StartsWith("Npgsql", StringComparison.Ordinal) == true)
            {
                return true;
            }
        }

        return false;
    }
}
