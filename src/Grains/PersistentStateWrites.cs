namespace Conversations.Grains;

/// <summary>Writes of grain state that keep memory as storage has it.</summary>
public static class PersistentStateWrites
{
    /// <summary>
    /// Makes <paramref name="next"/> the state and writes it; when the write fails, the state in memory goes back to
    /// what it was (what storage still holds) and the failure is rethrown.
    /// </summary>
    public static async Task WriteOrRestoreAsync<T>(this IPersistentState<T> state, T next, CancellationToken cancellationToken = default)
    {
        var previous = state.State;
        state.State = next;
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch
        {
            state.State = previous;
            throw;
        }
    }
}
