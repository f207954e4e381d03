using Microsoft.Extensions.FileProviders;
using Microsoft.Net.Http.Headers;

namespace Conversations.Gateway.Pages;

/// <summary>
/// The pages' static files (<c>wwwroot</c>: the chat page, the ops dashboard): the web root when it has them (run
/// from the project folder, or a published app), else the copy beside the gateway's assembly (a build run from
/// another folder, as deploy/local-cluster.sh does).
/// </summary>
public sealed class WebAssets(IWebHostEnvironment environment)
{
    /// <summary>Where the files are.</summary>
    public IFileProvider Files { get; } = environment.WebRootFileProvider.GetFileInfo("index.html").Exists
        ? environment.WebRootFileProvider
        : Directory.Exists(Path.Combine(AppContext.BaseDirectory, "wwwroot"))
            ? new PhysicalFileProvider(Path.Combine(AppContext.BaseDirectory, "wwwroot"))
            : new NullFileProvider();

    /// <summary>One file, revalidated on every use (no stale page after an upgrade), or 404.</summary>
    public IResult Serve(HttpContext context, string path)
    {
        var file = Files.GetFileInfo(path);
        if (!file.Exists || file.IsDirectory)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"Nothing is at {context.Request.Path}.");
        }

        context.Response.Headers.CacheControl = "no-cache";
        return TypedResults.Stream(file.CreateReadStream(), ContentType(path), lastModified: file.LastModified, entityTag: new EntityTagHeaderValue($"\"{file.LastModified.UtcTicks:x}-{file.Length:x}\""));
    }

    private static string ContentType(string path) => Path.GetExtension(path) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}
