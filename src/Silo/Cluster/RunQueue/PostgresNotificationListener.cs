using Conversations.Silo.Storage.Postgres;
using Npgsql;

namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>
/// One dedicated connection that <c>LISTEN</c>s on one channel and hands each notification's payload to a callback.
/// Reconnects after <see cref="RunQueueOptions.ReconnectDelay"/> when the connection fails, and probes a silent
/// connection every <see cref="RunQueueOptions.ListenerKeepAlive"/> so a dead one is noticed. Every time listening
/// (re)starts it calls <c>onListening</c>: notifications sent while nobody listened are lost, so whoever relies on
/// them re-reads the state they announce.
/// </summary>
internal sealed class PostgresNotificationListener : IAsyncDisposable
{
    private readonly PostgresDatabase _database;
    private readonly string _channel;
    private readonly Action<string> _onNotification;
    private readonly Action _onListening;
    private readonly RunQueueOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private Task? _loop;
    private volatile int _processId;

    public PostgresNotificationListener(
        PostgresDatabase database,
        string channel,
        Action<string> onNotification,
        Action onListening,
        RunQueueOptions options,
        ILogger logger)
    {
        _database = database;
        _channel = channel;
        _onNotification = onNotification;
        _onListening = onListening;
        _options = options;
        _logger = logger;
    }

    /// <summary>True while the connection is listening.</summary>
    public bool IsListening => _processId != 0;

    /// <summary>The listening connection's backend process id; 0 while not listening (tests terminate it).</summary>
    public int ProcessId => _processId;

    /// <summary>Starts listening in the background, once; later calls do nothing.</summary>
    public void Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
            _loop ??= Task.Run(() => RunAsync(_stopping.Token));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            _stopping.Cancel();
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.ListenerFailed(_logger, e, _channel, _options.ReconnectDelay);
            }
            finally
            {
                _processId = 0;
            }

            try
            {
                await Task.Delay(_options.ReconnectDelay, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ListenAsync(CancellationToken stopping)
    {
        await using var connection = await _database.OpenConnectionAsync(stopping).ConfigureAwait(false);
        connection.Notification += (_, e) => _onNotification(e.Payload);
        await using (var listen = new NpgsqlCommand(RunQueueSql.Listen(_channel), connection))
        {
            await listen.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
        }

        _processId = connection.ProcessID;
        _onListening();
        while (true)
        {
            if (!await connection.WaitAsync(_options.ListenerKeepAlive, stopping).ConfigureAwait(false))
            {
                await using var probe = new NpgsqlCommand(RunQueueSql.KeepAlive, connection);
                await probe.ExecuteScalarAsync(stopping).ConfigureAwait(false);
            }
        }
    }
}
