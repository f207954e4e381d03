// Server-Sent Events over fetch + ReadableStream (no EventSource): headers can be sent (Authorization), and after a
// dropped connection it reconnects by itself with Last-Event-ID set to the last event it delivered, so the server
// resumes right after it: no event lost, none twice.

/** The Authorization header of the API key saved on this page, if any. */
export function authHeaders() {
  const key = localStorage.getItem("conversations.apiKey");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/**
 * Reads an SSE stream from `url` until `close()`.
 * options: lastEventId (resume after it), onEvent({ type, data, id }), onState("connecting" | "open" | "retrying" | "closed", detail),
 * onHttpError(response) → true to stop (default: stop on 4xx, retry on 5xx).
 */
export function openEventStream(url, options = {}) {
  const controller = new AbortController();
  let lastEventId = options.lastEventId ?? null;
  let closed = false;
  let failures = 0;
  const state = (name, detail) => options.onState?.(name, detail);

  async function run() {
    while (!closed) {
      state(failures === 0 ? "connecting" : "retrying");
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
        const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
        if (!response.ok) {
          const stop = options.onHttpError ? await options.onHttpError(response) : response.status < 500;
          if (stop) {
            closed = true;
            state("closed", `HTTP ${response.status}`);
            return;
          }
          throw new Error(`HTTP ${response.status}`);
        }
        failures = 0;
        state("open");
        await readEvents(response.body, (event) => {
          if (event.id !== null) lastEventId = event.id;
          options.onEvent?.(event);
        });
        // The server ended the stream (it stopped, or the stream was finite): connect again after the last event.
      } catch (error) {
        if (closed || controller.signal.aborted) return;
        state("retrying", error?.message ?? String(error));
      }
      failures++;
      await delay(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
    }
  }

  run();
  return {
    close() {
      closed = true;
      controller.abort();
      state("closed");
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Parses the SSE framing (https://html.spec.whatwg.org/multipage/server-sent-events.html) of a byte stream. */
async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === "\r" && buffer[newline + 1] === "\n" ? 2 : 1));
      if (line === "") {
        if (data.length > 0) dispatch({ type: type || "message", data: data.join("\n"), id });
        type = "";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let fieldValue = colon < 0 ? "" : line.slice(colon + 1);
      if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
      if (field === "event") type = fieldValue;
      else if (field === "data") data.push(fieldValue);
      else if (field === "id") id = fieldValue;
    }
  }
}

/** fetch with the page's API key and JSON; throws an Error whose message is the server's ProblemDetails in words. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const json = text ? safeJson(text) : null;
  if (!response.ok) {
    const detail = json?.detail ?? json?.title ?? json?.error?.message ?? text ?? "";
    const error = new Error(`${response.status}: ${detail || response.statusText}`);
    error.status = response.status;
    error.body = json;
    throw error;
  }
  return json;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
