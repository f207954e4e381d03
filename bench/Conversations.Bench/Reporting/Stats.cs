namespace Conversations.Bench.Reporting;

/// <summary>Percentiles of a sample (nearest rank on the sorted values), in the sample's unit.</summary>
public sealed record Summary(int Count, double Mean, double P50, double P95, double P99, double Max)
{
    public static Summary Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return new Summary(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        return new Summary(sorted.Length, sorted.Average(), Percentile(sorted, 50), Percentile(sorted, 95), Percentile(sorted, 99), sorted[^1]);
    }

    /// <summary>The value at <paramref name="percent"/> of a sorted array (nearest rank).</summary>
    public static double Percentile(double[] sorted, double percent)
    {
        var rank = (int)Math.Ceiling(percent / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

public static class Numbers
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        return sorted.Length == 0 ? double.NaN
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
            : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static double Ms(long fromTimestamp, long toTimestamp) =>
        (toTimestamp - fromTimestamp) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
}
