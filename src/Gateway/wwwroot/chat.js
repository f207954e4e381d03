// The chat page: one thread at a time, rendered from the thread's event stream (GET /threads/{id}/events). A send is
// a POST that answers at once (wait: false); the reply arrives on the same stream every tab of the thread follows,
// so the tab that sent and the tabs that watch show the same thing. On reconnect the stream resumes after the last
// event it delivered (Last-Event-ID); on a reload the history comes from the messages API and the active run is
// replayed from its first event, so nothing shows twice.
import { api, openEventStream } from "/sse.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("connection-status"),
  messages: $("messages"),
  error: $("error"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  cancel: $("cancel"),
  agent: $("agent"),
  agentDescription: $("agent-description"),
  threadList: $("thread-list"),
  threadTitle: $("thread-title"),
  threadId: $("thread-id"),
  runId: $("run-id"),
  runStatus: $("run-status"),
};

const THREADS_KEY = "conversations.threads";
const AGENT_KEY = "conversations.agent";

let current = null; // { id, stream, lastSequence, activeRunId, messages: Map, calls: Map, lastMessageId }

// ---- threads -----------------------------------------------------------------------------------------------------

function savedThreads() {
  try {
    return JSON.parse(localStorage.getItem(THREADS_KEY) ?? "[]");
  } catch {
    return [];
  }
}

function rememberThread(id) {
  const threads = [id, ...savedThreads().filter((t) => t !== id)].slice(0, 30);
  localStorage.setItem(THREADS_KEY, JSON.stringify(threads));
  renderThreadList();
}

function renderThreadList() {
  ui.threadList.replaceChildren(
    ...savedThreads().map((id) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = id;
      button.title = id;
      button.setAttribute("aria-current", String(current?.id === id));
      button.addEventListener("click", () => openThread(id));
      item.append(button);
      return item;
    }),
  );
}

async function createThread() {
  const agent = ui.agent.value || undefined;
  const thread = await api("/threads", { method: "POST", body: agent ? { agent } : {} });
  rememberThread(thread.id);
  await openThread(thread.id);
  return thread.id;
}

async function openThread(id) {
  closeThread();
  showError(null);
  const thread = await api(`/threads/${encodeURIComponent(id)}`);
  current = { id, stream: null, lastSequence: 0, activeRunId: null, messages: new Map(), calls: new Map(), lastMessageId: null };
  location.hash = `thread=${encodeURIComponent(id)}`;
  rememberThread(id);
  ui.threadTitle.textContent = "Thread";
  ui.threadId.textContent = id;
  ui.messages.replaceChildren();
  await loadNewMessages();

  // Follow from the active run's start (its text so far is not in the history yet), else from the last event.
  let after = thread.lastSequence ?? 0;
  if (thread.activeRunId) {
    try {
      const run = await api(`/threads/${encodeURIComponent(id)}/runs/${encodeURIComponent(thread.activeRunId)}`);
      if (run.startSequence > 0) after = Math.min(after, run.startSequence - 1);
      setRun(thread.activeRunId, "running");
    } catch {
      // The run ended meanwhile: its messages are in the history.
    }
  } else {
    setRun(null, "idle");
  }
  current.lastSequence = after;
  const state = current;
  state.stream = openEventStream(`/threads/${encodeURIComponent(id)}/events?after=${after}`, {
    lastEventId: null,
    onEvent: (event) => state === current && onThreadEvent(event),
    onState: (name, detail) => state === current && showConnection(name, detail),
  });
  ui.prompt.focus();
}

function closeThread() {
  current?.stream?.close();
  current = null;
  setRun(null, "idle");
}

/** Renders the messages stored after the last one shown (the history, or a user message another tab sent). */
async function loadNewMessages() {
  const state = current;
  let hasMore = true;
  while (hasMore && state === current) {
    const query = new URLSearchParams({ limit: "100" });
    if (state.lastMessageId) query.set("after", state.lastMessageId);
    const page = await api(`/threads/${encodeURIComponent(state.id)}/messages?${query}`);
    for (const message of page.data) {
      renderStoredMessage(message);
      state.lastMessageId = message.id;
    }
    hasMore = page.hasMore && page.data.length > 0;
  }
}

// ---- rendering ---------------------------------------------------------------------------------------------------

function messageElement(id, role) {
  let entry = current.messages.get(id);
  if (entry) return entry;
  const element = document.createElement("article");
  element.className = "message";
  element.dataset.role = role;
  element.dataset.messageId = id;
  const who = document.createElement("p");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "assistant" ? "Assistant" : role;
  const text = document.createElement("p");
  text.className = "text";
  const calls = document.createElement("div");
  calls.className = "calls";
  element.append(who, text, calls);
  ui.messages.append(element);
  entry = { element, text, calls, complete: false };
  current.messages.set(id, entry);
  return entry;
}

function renderStoredMessage(message) {
  if (message.role === "tool") {
    const call = current.calls.get(message.toolCallId);
    if (call) setCallResult(call, message.content, null, message.status === "failed");
    return;
  }
  if (current.messages.get(message.id)?.complete) return;
  const entry = messageElement(message.id, message.role);
  entry.text.textContent = message.content ?? "";
  entry.complete = true;
  entry.element.dataset.status = message.status ?? "completed";
  if (message.status && message.status !== "completed") note(entry, `This message is ${message.status}.`);
  for (const call of message.toolCalls ?? []) {
    const block = toolCallElement(entry, call.id, call.name);
    block.args.textContent = call.arguments;
  }
  scrollDown();
}

function toolCallElement(entry, callId, name) {
  let call = current.calls.get(callId);
  if (call) return call;
  const element = document.createElement("details");
  element.className = "tool-call";
  element.dataset.callId = callId;
  element.dataset.status = "running";
  element.open = true;
  const summary = document.createElement("summary");
  const title = document.createElement("span");
  title.className = "tool-name";
  title.textContent = name;
  const state = document.createElement("span");
  state.className = "tool-state";
  state.textContent = " — running";
  summary.append("Tool call: ", title, state);
  const list = document.createElement("dl");
  const row = (label, className) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.className = className;
    list.append(dt, dd);
    return dd;
  };
  const args = row("Arguments", "tool-args");
  const result = row("Result", "tool-result");
  const duration = row("Duration", "tool-duration");
  element.append(summary, list);
  entry.calls.append(element);
  call = { element, args, result, duration, state };
  current.calls.set(callId, call);
  return call;
}

function setCallResult(call, text, durationMs, failed) {
  call.element.dataset.status = failed ? "failed" : "completed";
  call.state.textContent = failed ? " — failed" : " — done";
  call.result.textContent = text;
  if (durationMs !== null && durationMs !== undefined) call.duration.textContent = `${durationMs} ms`;
}

function note(entry, text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  entry.element.append(p);
}

function runNote(kind, text) {
  const p = document.createElement("p");
  p.className = "run-note";
  p.dataset.kind = kind;
  p.textContent = text;
  ui.messages.append(p);
  scrollDown();
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// ---- events ------------------------------------------------------------------------------------------------------

function onThreadEvent({ type, data, id }) {
  const sequence = Number(id);
  if (Number.isFinite(sequence)) {
    if (sequence <= current.lastSequence) return; // seen already (a replay overlapping what we had)
    current.lastSequence = sequence;
  }
  const event = JSON.parse(data);
  const live = (messageId) => {
    const entry = current.messages.get(messageId);
    return entry && entry.complete ? null : entry;
  };
  switch (type) {
    case "run.started":
      setRun(event.runId, "running");
      // The user message is stored when the run starts; events do not carry its text: hold its place, then read it.
      if (event.userMessageId && !current.messages.has(event.userMessageId)) messageElement(event.userMessageId, "user");
      loadNewMessages().catch(showError);
      break;
    case "run.queued":
      runNote("queued", `A run is queued (position ${event.position}).`);
      break;
    case "message.started":
      if (!current.messages.has(event.messageId)) {
        const entry = messageElement(event.messageId, event.role ?? "assistant");
        entry.element.dataset.status = "streaming";
      }
      break;
    case "text.delta": {
      const entry = live(event.messageId) ?? (current.messages.has(event.messageId) ? null : messageElement(event.messageId, "assistant"));
      if (entry) {
        entry.element.dataset.status = "streaming";
        entry.text.textContent += event.text;
        scrollDown();
      }
      break;
    }
    case "tool_call.started": {
      const entry = live(event.messageId) ?? (current.messages.has(event.messageId) ? null : messageElement(event.messageId, "assistant"));
      if (entry) toolCallElement(entry, event.callId, event.name);
      break;
    }
    case "tool_call.arguments.delta": {
      const call = current.calls.get(event.callId);
      if (call && call.element.dataset.status === "running") call.args.textContent += event.delta;
      break;
    }
    case "tool_call.completed":
    case "tool_call.failed": {
      const call = current.calls.get(event.callId);
      if (call) {
        call.args.textContent = event.arguments;
        setCallResult(call, type === "tool_call.completed" ? event.result : event.error, event.durationMs, type === "tool_call.failed");
      }
      break;
    }
    case "message.completed": {
      const entry = live(event.messageId);
      if (entry) {
        // The deltas' concatenation equals the stored text; should it not, the stored text wins and the message
        // says so (data-resynced), which the browser tests check never happens.
        if (entry.text.textContent !== event.content) {
          console.warn(`message ${event.messageId}: the streamed text differs from the stored one`);
          entry.element.dataset.resynced = "true";
          entry.text.textContent = event.content;
        }
        entry.complete = true;
        entry.element.dataset.status = "completed";
      }
      break;
    }
    case "agent.status":
      ui.runStatus.textContent = `running (${event.status.replaceAll("_", " ")})`;
      break;
    case "run.completed":
      endRun(event.runId, "completed");
      break;
    case "run.failed":
      endRun(event.runId, "failed");
      runNote("failed", `The run failed: ${event.error?.message ?? event.error?.code ?? "unknown error"}`);
      break;
    case "run.cancelled":
      endRun(event.runId, "cancelled");
      runNote("cancelled", `The run was cancelled${event.reason ? `: ${event.reason}` : "."}`);
      break;
    case "run.requires_action":
      runNote("requires_action", "The run waits for client tool outputs (submit them through the API).");
      break;
    default:
      break;
  }
}

function endRun(runId, status) {
  for (const entry of current.messages.values()) {
    if (!entry.complete && entry.element.dataset.status === "streaming") entry.element.dataset.status = status;
  }
  if (current.activeRunId === runId) setRun(runId, status);
}

function setRun(runId, status) {
  if (current) current.activeRunId = status === "running" ? runId : null;
  ui.runId.textContent = runId ?? "–";
  ui.runStatus.textContent = status;
  ui.cancel.disabled = status !== "running";
}

function showConnection(name, detail) {
  const words = { connecting: "Connecting…", open: "Live", retrying: "Reconnecting…", closed: "Disconnected" };
  ui.status.dataset.state = name;
  ui.status.textContent = (words[name] ?? name) + (detail && name !== "open" ? ` (${detail})` : "");
}

function showError(error) {
  if (!error) {
    ui.error.hidden = true;
    ui.error.textContent = "";
    return;
  }
  ui.error.hidden = false;
  ui.error.textContent = error.message ?? String(error);
}

// ---- actions -----------------------------------------------------------------------------------------------------

async function send() {
  const content = ui.prompt.value;
  if (!content.trim()) return;
  showError(null);
  ui.send.disabled = true;
  try {
    const threadId = current?.id ?? (await createThread());
    const body = { content, stream: false, wait: false };
    if (ui.agent.value) body.agent = ui.agent.value;
    const accepted = await api(`/threads/${encodeURIComponent(threadId)}/messages`, { method: "POST", body });
    ui.prompt.value = "";
    if (accepted.status === "running" && current?.id === threadId) setRun(accepted.runId, "running");
  } catch (error) {
    showError(error);
  } finally {
    ui.send.disabled = false;
    ui.prompt.focus();
  }
}

async function cancel() {
  if (!current?.activeRunId) return;
  try {
    await api(`/threads/${encodeURIComponent(current.id)}/runs/${encodeURIComponent(current.activeRunId)}/cancel`, { method: "POST" });
  } catch (error) {
    showError(error);
  }
}

async function loadAgents() {
  try {
    const agents = await api("/agents?format=native");
    const saved = localStorage.getItem(AGENT_KEY) ?? "";
    ui.agent.replaceChildren(
      ...agents.data.map((agent) => {
        const option = document.createElement("option");
        option.value = agent.name === "default" ? "" : agent.name;
        option.textContent = agent.name;
        option.dataset.description = agent.instructions ?? "";
        return option;
      }),
    );
    ui.agent.value = [...ui.agent.options].some((o) => o.value === saved) ? saved : "";
    describeAgent();
  } catch (error) {
    showError(error);
  }
}

function describeAgent() {
  const option = ui.agent.selectedOptions[0];
  ui.agentDescription.textContent = option?.dataset.description ? option.dataset.description.slice(0, 160) : "";
}

function threadFromHash() {
  const match = /thread=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
ui.cancel.addEventListener("click", cancel);
ui.agent.addEventListener("change", () => {
  localStorage.setItem(AGENT_KEY, ui.agent.value);
  describeAgent();
});
$("new-thread").addEventListener("click", () => createThread().catch(showError));
$("open-thread-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("open-thread-id").value.trim();
  if (id) openThread(id).catch(showError);
});
$("api-key").value = localStorage.getItem("conversations.apiKey") ?? "";
$("settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem("conversations.apiKey", key);
  else localStorage.removeItem("conversations.apiKey");
  loadAgents();
});
window.addEventListener("hashchange", () => {
  const id = threadFromHash();
  if (id && id !== current?.id) openThread(id).catch(showError);
});

renderThreadList();
loadAgents();
const initial = threadFromHash();
if (initial) openThread(initial).catch(showError);
