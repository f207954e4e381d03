using System.Text.Json;

namespace Conversations.Grains.Abstractions.Serialization;

/// <summary>
/// Carries a <see cref="JsonElement"/> across grain calls as its JSON text. Values typed <c>object</c> in contracts
/// (an agent status's details) are JSON elements once they have been read back from the event log.
/// </summary>
[GenerateSerializer, Immutable, Alias("conv.JsonElement")]
public readonly struct JsonElementSurrogate(string json)
{
    [Id(0)]
    public string Json { get; } = json;
}

/// <summary>Converts <see cref="JsonElement"/> to and from <see cref="JsonElementSurrogate"/>.</summary>
[RegisterConverter]
public sealed class JsonElementSurrogateConverter : IConverter<JsonElement, JsonElementSurrogate>
{
    public JsonElement ConvertFromSurrogate(in JsonElementSurrogate surrogate)
    {
        using var document = JsonDocument.Parse(surrogate.Json);
        return document.RootElement.Clone();
    }

    public JsonElementSurrogate ConvertToSurrogate(in JsonElement value) => new(value.GetRawText());
}
