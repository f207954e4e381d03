namespace Conversations.Silo;

/// <summary>A cluster silo process (being ported onto Orleans' ADO.NET providers).</summary>
public static class SiloProgram
{
    public static Task Main(string[] args) => throw new NotSupportedException("Cluster silos are being moved onto Orleans; see issue 7.");
}
