namespace Conversations.Tests.Postgres;

// Small grains that drive Orleans' ADO.NET grain storage and reminder service against our schema.

/// <summary>The state <see cref="StateProbeGrain"/> persists.</summary>
[GenerateSerializer, Alias("test.ProbeState")]
public sealed class ProbeState
{
    [Id(0)]
    public string? Value { get; set; }

    [Id(1)]
    public int Writes { get; set; }
}

/// <summary>What an activation of <see cref="StateProbeGrain"/> holds: its state, ETag, and which activation it is.</summary>
[GenerateSerializer, Immutable, Alias("test.ProbeSnapshot")]
public sealed record ProbeSnapshot([Id(0)] string? Value, [Id(1)] int Writes, [Id(2)] string? ETag, [Id(3)] bool RecordExists, [Id(4)] Guid Activation);

[Alias("test.IStateProbeGrain")]
public interface IStateProbeGrain : IGrainWithStringKey
{
    /// <summary>The state as this activation loaded or last wrote it (no re-read).</summary>
    Task<ProbeSnapshot> GetAsync();

    /// <summary>Sets the value and writes the state with the ETag this activation holds.</summary>
    Task<ProbeSnapshot> WriteAsync(string value);

    Task<ProbeSnapshot> ClearAsync();

    /// <summary>Ends this activation after the call, so the next call activates the grain anew (on either silo).</summary>
    Task DeactivateAsync();
}

public sealed class StateProbeGrain([PersistentState("probe", "threads")] IPersistentState<ProbeState> state) : Grain, IStateProbeGrain
{
    private readonly Guid _activation = Guid.NewGuid();

    public Task<ProbeSnapshot> GetAsync() => Task.FromResult(Snapshot());

    public async Task<ProbeSnapshot> WriteAsync(string value)
    {
        state.State.Value = value;
        state.State.Writes++;
        await state.WriteStateAsync();
        return Snapshot();
    }

    public async Task<ProbeSnapshot> ClearAsync()
    {
        await state.ClearStateAsync();
        return Snapshot();
    }

    public Task DeactivateAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private ProbeSnapshot Snapshot() => new(state.State.Value, state.State.Writes, state.Etag, state.RecordExists, _activation);
}

[Alias("test.IReminderProbeGrain")]
public interface IReminderProbeGrain : IGrainWithStringKey
{
    Task RegisterAsync(string name, TimeSpan dueTime, TimeSpan period);

    /// <summary>The names of the grain's reminders, as the reminder table lists them.</summary>
    Task<string[]> ListAsync();

    Task UnregisterAsync(string name);

    /// <summary>How often a reminder fired on this activation.</summary>
    Task<int> GetTicksAsync();
}

public sealed class ReminderProbeGrain : Grain, IReminderProbeGrain, IRemindable
{
    private int _ticks;

    public async Task RegisterAsync(string name, TimeSpan dueTime, TimeSpan period) =>
        await this.RegisterOrUpdateReminder(name, dueTime, period);

    public async Task<string[]> ListAsync() =>
        [.. (await this.GetReminders()).Select(r => r.ReminderName).Order(StringComparer.Ordinal)];

    public async Task UnregisterAsync(string name)
    {
        var reminder = await this.GetReminder(name) ?? throw new InvalidOperationException($"No reminder '{name}'.");
        await this.UnregisterReminder(reminder);
    }

    public Task<int> GetTicksAsync() => Task.FromResult(_ticks);

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        _ticks++;
        return Task.CompletedTask;
    }
}
