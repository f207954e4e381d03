using Conversations.Grains.Abstractions.Events;

namespace Conversations.Gateway.Errors;

/// <summary>
/// The HTTP status a failed run answers a non-streaming request with, in the dialects whose clients expect an HTTP
/// error for it (OpenAI chat completions, Langbase's pipe run, seed 003's <c>/chat</c>), by the run's error code:
/// the model could not be reached or said "try later" (<c>model_unavailable</c>) is <c>503</c>; the model answered with
/// an error or its stream broke (<c>model_error</c>) is <c>502</c>, a bad gateway; a run interrupted by a node that
/// stopped (<c>interrupted</c>) is <c>503</c>, worth retrying; a run cancelled by another request is <c>409</c>; anything
/// else is <c>500</c>. The native API answers <c>200</c> with the run's status instead (like OpenAI Responses), and
/// seed 001's <c>/completion</c> keeps the <c>500</c> its seed documents.
/// </summary>
public static class RunFailureStatus
{
    /// <summary>The codes a cancelled run carries in the dialects' errors.</summary>
    public const string RunCancelled = "run_cancelled";

    public static int For(string? code) => code switch
    {
        RunErrorCodes.ModelUnavailable or RunErrorCodes.Interrupted => StatusCodes.Status503ServiceUnavailable,
        RunErrorCodes.ModelError => StatusCodes.Status502BadGateway,
        RunCancelled or "cancelled" => StatusCodes.Status409Conflict,
        _ => StatusCodes.Status500InternalServerError,
    };
}
