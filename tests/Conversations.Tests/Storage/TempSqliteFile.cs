using Conversations.Silo.Storage.Sqlite;

namespace Conversations.Tests.Storage;

/// <summary>
/// A SQLite file of its own for one test, in a fresh temp directory that does not exist yet (the database creates
/// it). Disposing clears the pools of every database opened on it and deletes the directory with the WAL files.
/// </summary>
internal sealed class TempSqliteFile : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "conversations-tests", Guid.NewGuid().ToString("N"));
    private readonly List<SqliteDatabase> _opened = [];

    public TempSqliteFile() => FilePath = Path.Combine(_root, "data", "conversations.db");

    public string FilePath { get; }

    /// <summary>A new <see cref="SqliteDatabase"/> on the file, not migrated.</summary>
    public SqliteDatabase Open()
    {
        var database = new SqliteDatabase(FilePath);
        lock (_opened)
        {
            _opened.Add(database);
        }

        return database;
    }

    /// <summary>A new <see cref="SqliteDatabase"/> on the file, migrated.</summary>
    public async Task<SqliteDatabase> OpenMigratedAsync()
    {
        var database = Open();
        await database.MigrateAsync(TestContext.Current.CancellationToken);
        return database;
    }

    public void Dispose()
    {
        lock (_opened)
        {
            foreach (var database in _opened)
            {
                database.Dispose();
            }
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
