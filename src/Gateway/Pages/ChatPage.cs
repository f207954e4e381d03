using Microsoft.AspNetCore.StaticFiles;

namespace Conversations.Gateway.Pages;

/// <summary>
/// The chat page at <c>/</c> and its static files (<c>wwwroot</c>). <c>GET /</c> is the page for a browser (a request
/// that accepts <c>text/html</c>); any other client still gets seed 002's server status JSON there. Files under
/// <c>/ops</c> are not served here: the ops endpoints serve them behind their access rule.
/// </summary>
public static class ChatPage
{
    public static IServiceCollection AddPages(this IServiceCollection services) => services.AddSingleton<WebAssets>();

    public static WebApplication UseChatPage(this WebApplication app)
    {
        var assets = app.Services.GetRequiredService<WebAssets>();
        app.Use(async (context, next) =>
        {
            if (HttpMethods.IsGet(context.Request.Method) && context.Request.Path == "/" && AcceptsHtml(context.Request))
            {
                await assets.Serve(context, "index.html").ExecuteAsync(context);
                return;
            }

            await next(context);
        });
        app.UseWhen(
            context => !context.Request.Path.StartsWithSegments("/ops", StringComparison.OrdinalIgnoreCase),
            branch => branch.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = assets.Files,
                ContentTypeProvider = new FileExtensionContentTypeProvider(),
                OnPrepareResponse = file => file.Context.Response.Headers.CacheControl = "no-cache",
            }));
        return app;
    }

    private static bool AcceptsHtml(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals("text/html", StringComparison.OrdinalIgnoreCase));
}
