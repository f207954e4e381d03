using Conversations.Gateway;
using Conversations.Gateway.Compat.Axmp;
using Conversations.Gateway.Compat.Completion;
using Conversations.Gateway.Compat.Langbase;
using Conversations.Gateway.Compat.OpenAi;
using Conversations.Gateway.Compat.StreamingChat;
using Conversations.Gateway.Health;
using Conversations.Gateway.Threads;
using Conversations.Silo.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddGatewayDefaults();
builder.Services.AddSingleton(new GatewayMode("embedded"));
builder.AddEmbeddedSilo();

var app = builder.Build();
app.UseGatewayDefaults();
app.MapHealthApi();
app.MapThreadsApi();
app.MapOpenAiCompatApi();
app.MapLangbaseCompatApi();
app.MapStreamingChatApi();
app.MapAxmpApi();
app.MapCompletionApi();
app.Run();

/// <summary>Entry point, public for WebApplicationFactory-based tests.</summary>
public partial class Program;
