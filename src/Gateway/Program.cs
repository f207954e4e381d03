using Conversations.Gateway;
using Conversations.Gateway.Agents;
using Conversations.Gateway.Auth;
using Conversations.Gateway.Compat.Axmp;
using Conversations.Gateway.Compat.Completion;
using Conversations.Gateway.Compat.Langbase;
using Conversations.Gateway.Compat.OpenAi;
using Conversations.Gateway.Compat.StreamingChat;
using Conversations.Gateway.Health;
using Conversations.Gateway.Models;
using Conversations.Gateway.Ops;
using Conversations.Gateway.Pages;
using Conversations.Gateway.Threads;
using Conversations.Gateway.Cluster;
using Conversations.Silo.Hosting;
using Conversations.ServiceDefaults.Hosting;

var builder = WebApplication.CreateBuilder(HostArguments.WithoutConfigurationReload(args));
builder.AddGatewayDefaults();
builder.AddGatewaySecurity();
builder.AddOps();
if (string.IsNullOrWhiteSpace(builder.Configuration["Cluster:PostgresConnectionString"]))
{
    // Embedded (the default): this process hosts the silo, on a SQLite file.
    builder.Services.AddSingleton(new GatewayMode("embedded"));
    builder.AddEmbeddedSilo();
}
else
{
    // Cluster: a stateless gateway in front of the silos, with PostgreSQL behind them.
    builder.Services.AddSingleton(new GatewayMode("cluster"));
    builder.AddClusterClient();
}

var app = builder.Build();
app.UseGatewayDefaults();
app.UseGatewaySecurity();
app.UseChatPage();
app.MapHealthApi();
app.MapThreadsApi();
app.MapOpenAiCompatApi();
app.MapLangbaseCompatApi();
app.MapStreamingChatApi();
app.MapAgentsApi();
app.MapModelsApi();
app.MapAxmpApi();
app.MapCompletionApi();
app.MapOpsApi().RequireAuthorization(Caller.AdminPolicy);
app.MapApiKeysApi();
app.Run();

/// <summary>Entry point, public for WebApplicationFactory-based tests.</summary>
public partial class Program;
