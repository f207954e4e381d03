using System.Reflection;
using Conversations.Silo.Storage.Postgres;
using Orleans.TestingHost;

namespace Conversations.Tests.Postgres;

/// <summary>
/// An <see cref="InProcessTestCluster"/> whose silos use Orleans' ADO.NET providers (Invariant <c>Npgsql</c>) on a
/// migrated test schema, as cluster mode configures them: clustering, grain storage <c>threads</c> (and
/// <c>threads-delete</c>, which deletes the row on clear) and reminders. The client finds the gateways through the
/// same membership table. Silos talk over the in-memory transport and advertise 127.0.0.1.
/// </summary>
internal static class OrleansPostgresCluster
{
    public const string Invariant = "Npgsql";

    public static async Task<InProcessTestCluster> StartAsync(PostgresDatabase database, short silos = 2)
    {
        var connectionString = database.ConnectionString; // carries Search Path = the test schema
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ConfigureFileLogging = false;
        UseConfiguredMembership(builder.Options);
        builder.ConfigureSilo((_, silo) => silo
            .UseAdoNetClustering(options =>
            {
                options.Invariant = Invariant;
                options.ConnectionString = connectionString;
            })
            .AddAdoNetGrainStorage("threads", options =>
            {
                options.Invariant = Invariant;
                options.ConnectionString = connectionString;
            })
            .AddAdoNetGrainStorage("threads-delete", options =>
            {
                options.Invariant = Invariant;
                options.ConnectionString = connectionString;
                options.DeleteStateOnClear = true;
            })
            .UseAdoNetReminderService(options =>
            {
                options.Invariant = Invariant;
                options.ConnectionString = connectionString;
            }));
        builder.ConfigureClient(client => client.UseAdoNetClustering(options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = connectionString;
        }));

        var cluster = builder.Build();
        try
        {
            await cluster.DeployAsync();
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>
    /// The in-process cluster registers its own in-memory membership table (and a grain directory built on it)
    /// after the test's configuration, so the ADO.NET table would never be asked, unless its internal switch
    /// <c>UseTestClusterMembership</c> is off: what Orleans' own ADO.NET tests do. Fails loudly if the switch moves.
    /// </summary>
    internal static void UseConfiguredMembership(InProcessTestClusterOptions options)
    {
        var property = typeof(InProcessTestClusterOptions).GetProperty("UseTestClusterMembership", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new InvalidOperationException("InProcessTestClusterOptions.UseTestClusterMembership is gone: update OrleansPostgresCluster.");
        property.SetValue(options, false);
    }
}
