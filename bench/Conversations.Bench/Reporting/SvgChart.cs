using System.Globalization;
using System.Security;
using System.Text;

namespace Conversations.Bench.Reporting;

/// <summary>
/// The chart of a run, as an SVG drawn here (no library): on the left the distribution (CDF) of time to first token
/// per path, on the right the distribution of inter-token gaps of the concurrent live runs. Each x axis ends at the
/// largest p99 of its series (with a margin), so a few outliers do not flatten the curves.
/// </summary>
public static class SvgChart
{
    private const int PanelWidth = 520;
    private const int PanelHeight = 360;
    private const int Left = 60;
    private const int Right = 20;
    private const int Top = 40;
    private const int Bottom = 50;

    private static readonly string[] Colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b2df8a"];

    public static string Render(RunResult run, BenchOptions options)
    {
        var panels = new List<(string Title, List<(string Name, double[] Values)> Series)>();
        if (run.Ttft is { } ttft)
        {
            panels.Add(("Time to first token, CDF (ms)", [.. ttft.Paths.Select(p => (p.Path, p.SamplesMs))]));
        }

        if (run.Live is { Count: > 0 } live)
        {
            panels.Add(($"Inter-token gaps at {options.TokenRate} tokens/s, CDF (ms)", [.. live.Select(l => ($"{l.Path}, {l.Runs} runs", l.GapSampleMs))]));
        }

        var width = Math.Max(1, panels.Count) * PanelWidth;
        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{PanelHeight}\" viewBox=\"0 0 {width} {PanelHeight}\" font-family=\"sans-serif\" font-size=\"11\">");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{PanelHeight}\" fill=\"white\"/>");
        for (var i = 0; i < panels.Count; i++)
        {
            Panel(svg, i * PanelWidth, panels[i].Title, panels[i].Series);
        }

        if (panels.Count == 0)
        {
            svg.AppendLine("<text x=\"20\" y=\"40\">No time-to-first-token or live-run samples in this run.</text>");
        }

        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static void Panel(StringBuilder svg, int x0, string title, List<(string Name, double[] Values)> series)
    {
        var plotWidth = PanelWidth - Left - Right;
        var plotHeight = PanelHeight - Top - Bottom;
        var sorted = series.Select(s => (s.Name, Values: s.Values.Order().ToArray())).Where(s => s.Values.Length > 0).ToList();
        var xMax = sorted.Count == 0 ? 1 : NiceCeiling(sorted.Max(s => Summary.Percentile(s.Values, 99)) * 1.1);
        double X(double value) => x0 + Left + (Math.Min(value, xMax) / xMax * plotWidth);
        double Y(double fraction) => Top + plotHeight - (fraction * plotHeight);

        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{x0 + Left}\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{SecurityElement.Escape(title)}</text>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{x0 + Left}\" y=\"{Top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#999\"/>");
        for (var t = 0; t <= 5; t++)
        {
            var value = xMax * t / 5;
            var x = X(value);
            svg.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{x:F1}\" y1=\"{Top}\" x2=\"{x:F1}\" y2=\"{Top + plotHeight}\" stroke=\"#eee\"/>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{x:F1}\" y=\"{Top + plotHeight + 15}\" text-anchor=\"middle\">{Label(value)}</text>");
            var fraction = t / 5.0;
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{x0 + Left - 5}\" y=\"{Y(fraction) + 4:F1}\" text-anchor=\"end\">{fraction:F1}</text>");
        }

        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{x0 + Left + (plotWidth / 2)}\" y=\"{PanelHeight - 12}\" text-anchor=\"middle\">ms (axis ends near the largest p99; later samples sit on the right edge)</text>");
        for (var i = 0; i < sorted.Count; i++)
        {
            var (name, values) = sorted[i];
            var color = Colors[i % Colors.Length];
            var points = new StringBuilder();
            var step = Math.Max(1, values.Length / 400);
            for (var k = 0; k < values.Length; k += step)
            {
                points.Append(CultureInfo.InvariantCulture, $"{X(values[k]):F1},{Y((k + 1.0) / values.Length):F1} ");
            }

            points.Append(CultureInfo.InvariantCulture, $"{X(values[^1]):F1},{Y(1):F1}");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{points}\"/>");
            var legendY = Top + 14 + (i * 15);
            svg.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{x0 + Left + plotWidth - 190}\" y1=\"{legendY - 4}\" x2=\"{x0 + Left + plotWidth - 172}\" y2=\"{legendY - 4}\" stroke=\"{color}\" stroke-width=\"3\"/>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{x0 + Left + plotWidth - 168}\" y=\"{legendY}\">{SecurityElement.Escape(name)} (p50 {Label(Summary.Percentile(values, 50))})</text>");
        }
    }

    private static double NiceCeiling(double value)
    {
        if (value <= 0 || double.IsNaN(value))
        {
            return 1;
        }

        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var factor in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (factor * magnitude >= value)
            {
                return factor * magnitude;
            }
        }

        return 10 * magnitude;
    }

    private static string Label(double value) => value.ToString(value < 10 ? "0.##" : "0", CultureInfo.InvariantCulture);
}
