namespace Conversations.Silo.Cluster.RunQueue;

/// <summary>The run queue's SQL, all of it. Channels are parameters (<c>@channel</c>): see <see cref="RunQueueChannels"/>.</summary>
/// <remarks>
/// Every statement that changes a row and notifies is a single statement, so the change and its notification commit
/// together (PostgreSQL delivers a notification only when its transaction commits). A request is "pending" while
/// <c>queued</c> or <c>taken</c>.
/// </remarks>
internal static class RunQueueSql
{
    // A run id enqueued twice keeps its first request; the second insert notifies no one and returns no row.
    public const string Enqueue = """
        WITH inserted AS (
            INSERT INTO run_requests (run_id, thread_id, payload, status)
            VALUES (@run_id, @thread_id, @payload, 'queued')
            ON CONFLICT (run_id) DO NOTHING
            RETURNING thread_id
        )
        SELECT pg_notify(@channel, inserted.thread_id) FROM inserted;
        """;

    public const string ReadOutcome = "SELECT status, result::text FROM run_requests WHERE run_id = @run_id;";

    public const string CancelQueued = """
        WITH cancelled AS (
            UPDATE run_requests SET status = 'cancelled', done_at = now()
            WHERE run_id = @run_id AND status = 'queued'
            RETURNING run_id
        )
        SELECT pg_notify(@channel, cancelled.run_id) FROM cancelled;
        """;

    // The scan. A request can be taken when it is queued, or taken longer ago than @taken_timeout (its taker is
    // presumed gone); when its thread's lease is free or expired, or held by this silo (affinity: nobody else takes
    // a thread whose activation lives on a live silo, and this silo's own threads come first); when no earlier
    // request of its thread is still pending (a thread's requests run one after another, in enqueue order, across
    // all silos); and when this worker is not already running it or backing off from it (@skip).
    // FOR UPDATE OF r SKIP LOCKED: concurrent scans skip each other's rows instead of waiting, and the lease rows are
    // not locked. The row is marked taken in the same statement, so its lock lasts only as long as this statement.
    public const string Take = """
        WITH candidates AS (
            SELECT r.run_id, r.taken_by AS previous_taker
            FROM run_requests r
            LEFT JOIN thread_leases l ON l.thread_id = r.thread_id AND l.expires_at > now()
            WHERE (r.status = 'queued' OR (r.status = 'taken' AND r.taken_at <= now() - @taken_timeout))
              AND (l.thread_id IS NULL OR l.silo_id = @silo_id)
              AND r.run_id <> ALL (@skip)
              AND NOT EXISTS (
                  SELECT 1 FROM run_requests e
                  WHERE e.thread_id = r.thread_id
                    AND e.status IN ('queued', 'taken')
                    AND (e.enqueued_at, e.run_id) < (r.enqueued_at, r.run_id))
            ORDER BY (l.thread_id IS NOT NULL) DESC, r.enqueued_at, r.run_id
            LIMIT @limit
            FOR UPDATE OF r SKIP LOCKED
        )
        UPDATE run_requests r
        SET status = 'taken', taken_by = @silo_id, taken_at = now(), attempts = r.attempts + 1
        FROM candidates c
        WHERE r.run_id = c.run_id
        RETURNING r.run_id, r.thread_id, r.payload::text, r.attempts, c.previous_taker;
        """;

    // Any pending request takes the result: when a request was retaken, the first answer stored wins, and the grain
    // gives the same answer to every delivery of one run id. A cancelled request stays cancelled.
    public const string Complete = """
        WITH done AS (
            UPDATE run_requests SET status = 'done', result = @result, done_at = now()
            WHERE run_id = @run_id AND status IN ('queued', 'taken')
            RETURNING run_id
        )
        SELECT pg_notify(@channel, done.run_id) FROM done;
        """;

    // Only while this silo still holds it; the notification (on the requests channel) wakes the thread's owner.
    public const string PutBack = """
        WITH back AS (
            UPDATE run_requests SET status = 'queued', taken_by = NULL, taken_at = NULL
            WHERE run_id = @run_id AND status = 'taken' AND taken_by = @silo_id
            RETURNING thread_id
        )
        SELECT pg_notify(@channel, back.thread_id) FROM back;
        """;

    public const string KeepAlive = "SELECT 1;";

    /// <summary><c>LISTEN</c> takes an identifier, not a parameter: the channel is quoted (and is made of a checked schema name and a constant).</summary>
    public static string Listen(string channel) => $"LISTEN \"{channel.Replace("\"", "\"\"", StringComparison.Ordinal)}\";";
}
