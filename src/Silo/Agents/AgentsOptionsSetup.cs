using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Conversations.Silo.Agents;

using Conversations.Grains.Agents;

/// <summary>Binds <c>Agents:{name}</c> sections and validates each, naming the setting that is wrong.</summary>
internal sealed class AgentsOptionsSetup(IConfiguration configuration) : IConfigureOptions<AgentsOptions>, IValidateOptions<AgentsOptions>
{
    public void Configure(AgentsOptions options) =>
        configuration.GetSection(AgentsOptions.SectionName).Bind(options.Agents);

    public ValidateOptionsResult Validate(string? name, AgentsOptions options)
    {
        var failures = new List<string>();
        foreach (var (agentName, settings) in options.Agents)
        {
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(settings, new ValidationContext(settings), results, validateAllProperties: true))
            {
                failures.AddRange(results.Select(r =>
                    $"{AgentsOptions.SectionName}:{agentName}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
