using Conversations.Grains.Abstractions.Runtime;
using Conversations.Grains.Abstractions.Threads;

namespace Conversations.Silo.Runtime;

/// <summary>Gives grain references whose calls go through the activation catalog.</summary>
public sealed class GrainFactory(ActivationCatalog catalog) : IGrainFactory
{
    public TGrain GetGrain<TGrain>(string key) where TGrain : IGrainWithStringKey
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (typeof(TGrain) == typeof(IThreadGrain))
        {
            return (TGrain)(object)new ThreadGrainReference(catalog, key);
        }

        throw new NotSupportedException($"No grain reference exists for {typeof(TGrain).Name}.");
    }
}

/// <summary>
/// A reference to a thread grain: each call is queued on the grain's activation. (Orleans generates these; here
/// they are written by hand, one line a method.)
/// </summary>
internal sealed class ThreadGrainReference(ActivationCatalog catalog, string key) : IThreadGrain
{
    public Task<ThreadSnapshot?> CreateAsync(CreateThread command, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, ThreadSnapshot?>(key, g => g.CreateAsync(command, cancellationToken), cancellationToken);

    public Task<ThreadSnapshot?> GetAsync(CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, ThreadSnapshot?>(key, g => g.GetAsync(cancellationToken), cancellationToken);

    public Task<MessagePage?> GetMessagesAsync(MessagePageRequest request, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, MessagePage?>(key, g => g.GetMessagesAsync(request, cancellationToken), cancellationToken);

    public Task<AppendMessagesResult> AppendMessagesAsync(IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, AppendMessagesResult>(key, g => g.AppendMessagesAsync(messages, cancellationToken), cancellationToken);

    public Task<SendMessageResult> SendMessageAsync(SendMessage command, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, SendMessageResult>(key, g => g.SendMessageAsync(command, cancellationToken), cancellationToken);

    public Task<CancelRunResult> CancelRunAsync(string runId, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, CancelRunResult>(key, g => g.CancelRunAsync(runId, cancellationToken), cancellationToken);

    public Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        catalog.InvokeAsync<IThreadGrain, RunRecord?>(key, g => g.GetRunAsync(runId, cancellationToken), cancellationToken);
}
