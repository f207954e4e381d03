namespace Conversations.Gateway.Compat.StreamingChat;

/// <summary>
/// <c>/docs</c>: a self-contained page (no CDN: the servers may be offline) that reads <c>/openapi/v1.json</c> and
/// lists every operation with its summary, parameters and body schema, and can send a request and show the answer
/// as it streams. <c>/redoc</c> redirects to it.
/// </summary>
public static class ApiDocsPage
{
    public const string OpenApiPath = "/openapi/v1.json";

    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder app)
    {
        app.MapGet("/docs", (HttpContext context) =>
            {
                context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
                return TypedResults.Content(Html, "text/html; charset=utf-8");
            })
            .WithName("ApiDocs").WithSummary("Interactive API documentation (reads /openapi/v1.json).").WithTags("Documentation");
        app.MapGet("/redoc", () => TypedResults.Redirect("/docs"))
            .WithName("ApiDocsRedoc").WithSummary("Redirects to /docs.").WithTags("Documentation");
        return app;
    }

    /// <summary>
    /// The page's Content-Security-Policy: its own origin, and its one inline script and stylesheet by their SHA-256
    /// (nothing else inline runs), never in a frame.
    /// </summary>
    public static readonly string ContentSecurityPolicy =
        $"default-src 'self'; script-src '{InlineHash("script")}'; style-src '{InlineHash("style")}'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private static string InlineHash(string tag)
    {
        var start = Html.IndexOf($"<{tag}>", StringComparison.Ordinal) + tag.Length + 2;
        var end = Html.IndexOf($"</{tag}>", start, StringComparison.Ordinal);
        return $"sha256-{Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Html[start..end])))}";
    }

    private const string Html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Conversations API docs</title>
        <style>
          body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f8fa; }
          header { background: #24292f; color: #fff; padding: 14px 24px; }
          header h1 { margin: 0; font-size: 20px; }
          header p { margin: 4px 0 0; color: #c9d1d9; }
          main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
          h2 { margin: 28px 0 8px; font-size: 17px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
          details.op { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; }
          details.op > summary { cursor: pointer; padding: 8px 12px; display: flex; gap: 12px; align-items: baseline; }
          .method { font: bold 12px ui-monospace, monospace; text-transform: uppercase; min-width: 64px; text-align: center;
                    border-radius: 4px; padding: 2px 6px; color: #fff; background: #57606a; }
          .get { background: #0969da; } .post { background: #1a7f37; } .put, .patch { background: #9a6700; } .delete { background: #cf222e; }
          .path { font-family: ui-monospace, monospace; font-weight: 600; }
          .summary { color: #57606a; }
          .body { padding: 0 12px 12px; }
          table { border-collapse: collapse; margin: 6px 0; }
          td, th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
          pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: 8px; overflow: auto; max-height: 360px; white-space: pre-wrap; }
          textarea { width: 100%; min-height: 90px; font-family: ui-monospace, monospace; box-sizing: border-box; }
          input { font-family: ui-monospace, monospace; }
          button { margin-top: 6px; padding: 4px 14px; cursor: pointer; }
          #error { color: #cf222e; }
          header a { color: #9ecbff; }
        </style>
        </head>
        <body>
        <header>
          <h1 id="title">Conversations API</h1>
          <p>Rendered from <a href="/openapi/v1.json">/openapi/v1.json</a>. WebSocket chat: <code>ws://HOST/ws</code>.</p>
        </header>
        <main>
          <p id="error"></p>
          <div id="ops">Loading…</div>
        </main>
        <script>
        "use strict";
        const el = (tag, attrs, ...children) => {
          const node = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
          for (const c of children) node.append(c);
          return node;
        };
        function resolve(doc, schema) {
          if (schema && schema.$ref) {
            const name = schema.$ref.split('/').pop();
            return (doc.components && doc.components.schemas && doc.components.schemas[name]) || schema;
          }
          return schema;
        }
        function example(doc, schema, depth) {
          schema = resolve(doc, schema) || {};
          if (depth > 4) return null;
          if (schema.example !== undefined) return schema.example;
          const type = Array.isArray(schema.type) ? schema.type.find(t => t !== 'null') : schema.type;
          if (type === 'object' || schema.properties) {
            const out = {};
            for (const [k, v] of Object.entries(schema.properties || {})) out[k] = example(doc, v, depth + 1);
            return out;
          }
          if (type === 'array') return [];
          if (type === 'string') return '';
          if (type === 'integer' || type === 'number') return 0;
          if (type === 'boolean') return false;
          return null;
        }
        async function send(method, pathTemplate, inputs, bodyArea, output) {
          let path = pathTemplate;
          for (const [name, input] of inputs) path = path.replace('{' + name + '}', encodeURIComponent(input.value));
          output.textContent = '';
          const init = { method: method.toUpperCase(), headers: {} };
          if (bodyArea) { init.body = bodyArea.value; init.headers['Content-Type'] = 'application/json'; }
          try {
            const response = await fetch(path, init);
            output.textContent = response.status + ' ' + response.statusText + '\n\n';
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            while (true) {
              const { done, value } = await reader.read();
              if (done) break;
              output.textContent += decoder.decode(value, { stream: true });
            }
          } catch (e) {
            output.textContent += String(e);
          }
        }
        function operation(doc, path, method, op) {
          const body = el('div', { class: 'body' });
          if (op.description) body.append(el('p', {}, op.description));
          const inputs = [];
          const params = op.parameters || [];
          if (params.length) {
            const table = el('table', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'value')));
            for (const p of params) {
              const input = el('input', { placeholder: p.name });
              if (p.in === 'path') inputs.push([p.name, input]);
              table.append(el('tr', {}, el('td', {}, p.name + (p.required ? ' *' : '')), el('td', {}, p.in), el('td', {}, input)));
            }
            body.append(table);
          }
          let bodyArea = null;
          const content = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
          if (content) {
            const schema = resolve(doc, content.schema);
            body.append(el('div', {}, 'Body schema:'), el('pre', {}, JSON.stringify(schema, null, 2)));
            bodyArea = el('textarea', {});
            bodyArea.value = JSON.stringify(example(doc, content.schema, 0), null, 2);
            body.append(el('div', {}, 'Try it:'), bodyArea);
          }
          const output = el('pre', {});
          const button = el('button', {}, 'Send');
          button.addEventListener('click', () => send(method, path, inputs, bodyArea, output));
          body.append(button, output);
          return el('details', { class: 'op' },
            el('summary', {}, el('span', { class: 'method ' + method }, method), el('span', { class: 'path' }, path), el('span', { class: 'summary' }, op.summary || '')),
            body);
        }
        async function load() {
          const ops = document.getElementById('ops');
          try {
            const response = await fetch('/openapi/v1.json');
            const doc = await response.json();
            document.getElementById('title').textContent = (doc.info && doc.info.title) || 'API';
            const groups = new Map();
            for (const [path, item] of Object.entries(doc.paths || {})) {
              for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
                const op = item[method];
                if (!op) continue;
                const tag = (op.tags && op.tags[0]) || 'Other';
                if (!groups.has(tag)) groups.set(tag, []);
                groups.get(tag).push(operation(doc, path, method, op));
              }
            }
            ops.textContent = '';
            for (const [tag, nodes] of groups) ops.append(el('h2', {}, tag), ...nodes);
          } catch (e) {
            ops.textContent = '';
            document.getElementById('error').textContent = 'Could not load /openapi/v1.json: ' + e;
          }
        }
        load();
        </script>
        </body>
        </html>
        """;
}
