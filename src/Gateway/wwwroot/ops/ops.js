// The ops dashboard: the cluster's numbers pushed every second over SSE (GET /ops/events), and a thread's live stream
// on demand (GET /ops/threads/{id}/events: a watcher the thread's subscriber counts leave out). No reloads.
import { openEventStream } from "/sse.js";

const $ = (id) => document.getElementById(id);
let watching = null; // { threadId, stream, lastSequence }

function text(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function cell(row, value, className) {
  const td = document.createElement("td");
  if (value instanceof Node) td.append(value);
  else td.textContent = text(value);
  if (className) td.className = className;
  row.append(td);
  return td;
}

function fill(tableId, items, build, empty) {
  const body = $(tableId).tBodies[0];
  if (items.length === 0) {
    const row = document.createElement("tr");
    const td = cell(row, empty);
    td.colSpan = $(tableId).tHead.rows[0].cells.length;
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...items.map((item) => {
      const row = document.createElement("tr");
      build(row, item);
      return row;
    }),
  );
}

function watchButton(threadId) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link watch-thread";
  button.dataset.threadId = threadId;
  button.textContent = threadId;
  button.setAttribute("aria-label", `Watch thread ${threadId}`);
  button.addEventListener("click", () => watch(threadId));
  return button;
}

function bytes(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1 << 30 ? `${(value / (1 << 30)).toFixed(1)} GiB` : `${(value / (1 << 20)).toFixed(0)} MiB`;
}

function time(value) {
  return value ? new Date(value).toLocaleTimeString() : "–";
}

function render(snapshot) {
  $("snapshot-at").textContent = time(snapshot.at);
  $("snapshot-at").dateTime = snapshot.at;
  $("snapshot-gateway").textContent = snapshot.gateway;
  const problems = $("problems");
  problems.hidden = snapshot.problems.length === 0;
  problems.textContent = snapshot.problems.join(" ");

  const runs = snapshot.runs;
  const set = (id, value) => ($(id).textContent = text(value));
  set("runs-active", runs.active);
  set("runs-started", runs.started);
  set("runs-completed", runs.completed);
  set("runs-failed", runs.failed);
  set("runs-cancelled", runs.cancelled);
  set("threads-active", runs.activeThreads);
  set("tokens-per-second", runs.tokensPerSecond);
  set("completion-tokens", runs.completionTokens);
  set("ttft-p50", runs.timeToFirstTokenP50Ms === undefined || runs.timeToFirstTokenP50Ms === null ? null : `${runs.timeToFirstTokenP50Ms} ms`);
  set("ttft-p95", runs.timeToFirstTokenP95Ms === undefined || runs.timeToFirstTokenP95Ms === null ? null : `${runs.timeToFirstTokenP95Ms} ms`);
  set("tool-calls", runs.toolCalls);
  set("tool-failures", runs.toolFailures);

  fill("active-runs", snapshot.activeRuns, (row, run) => {
    cell(row, watchButton(run.threadId));
    cell(row, run.runId);
    cell(row, run.agent);
    cell(row, run.model);
    cell(row, `${run.ageSeconds} s`, "num");
    cell(row, run.silo);
  }, "No run is active.");

  fill("silos", snapshot.silos, (row, silo) => {
    cell(row, `${silo.name} (${silo.address})`);
    cell(row, silo.status, `status-${silo.status}`);
    cell(row, silo.activations, "num");
    cell(row, silo.cpuPercent === null || silo.cpuPercent === undefined ? null : `${silo.cpuPercent} %`, "num");
    cell(row, silo.memoryUsedBytes === undefined ? null : `${bytes(silo.memoryUsedBytes)} of ${bytes(silo.totalPhysicalMemoryBytes)}`, "num");
    cell(row, time(silo.startedAt));
  }, "No silo is known.");

  fill("gateways", snapshot.gateways, (row, gateway) => {
    cell(row, `${gateway.host} ${gateway.addresses.join(" ")}`);
    cell(row, gateway.mode);
    cell(row, `${gateway.subscribers}${gateway.watchers ? ` (+${gateway.watchers} watching)` : ""}`, "num");
    const threads = document.createElement("ul");
    threads.className = "plain";
    for (const thread of gateway.threads) {
      const item = document.createElement("li");
      item.append(watchButton(thread.threadId), ` — ${thread.subscribers} subscriber(s), lag ${thread.maxLag}, at #${thread.lastSequence}`);
      threads.append(item);
    }
    cell(row, gateway.threads.length ? threads : "none");
    cell(row, time(gateway.reportedAt));
  }, "No gateway has reported.");

  fill("errors", snapshot.recentErrors, (row, error) => {
    cell(row, time(error.at));
    cell(row, error.kind === "tool" ? `tool ${error.tool}` : "run");
    cell(row, error.code);
    cell(row, error.message);
    const link = document.createElement("a");
    link.href = error.runUrl;
    link.textContent = error.runId;
    cell(row, link);
  }, "No recent errors.");

  fill("grains", snapshot.grains, (row, grain) => {
    cell(row, grain.type);
    cell(row, grain.activations, "num");
  }, "No activations.");
}

function watch(threadId) {
  watching?.stream.close();
  $("watch").hidden = false;
  $("watch-thread").textContent = threadId;
  $("watch-output").textContent = "";
  $("watch-tools").replaceChildren();
  const state = { threadId, lastSequence: 0, stream: null };
  watching = state;
  state.stream = openEventStream(`/ops/threads/${encodeURIComponent(threadId)}/events`, {
    onState: (name, detail) => state === watching && ($("watch-status").textContent = name + (detail ? ` (${detail})` : "")),
    onEvent: ({ type, data, id }) => {
      if (state !== watching) return;
      const sequence = Number(id);
      if (sequence <= state.lastSequence) return;
      state.lastSequence = sequence;
      const event = JSON.parse(data);
      const output = $("watch-output");
      if (type === "text.delta") {
        output.textContent += event.text;
        output.scrollTop = output.scrollHeight;
      } else if (type === "run.started") {
        $("watch-status").textContent = `run ${event.runId} running`;
      } else if (type === "tool_call.completed" || type === "tool_call.failed") {
        const item = document.createElement("li");
        item.textContent = type === "tool_call.completed"
          ? `${event.name}(${event.arguments}) → ${event.result} in ${event.durationMs} ms`
          : `${event.name}(${event.arguments}) failed: ${event.error}`;
        $("watch-tools").append(item);
      } else if (type === "run.completed" || type === "run.failed" || type === "run.cancelled") {
        $("watch-status").textContent = `run ${event.runId} ${type.slice(4)}`;
        output.textContent += "\n";
      }
    },
  });
}

$("watch-stop").addEventListener("click", () => {
  watching?.stream.close();
  watching = null;
  $("watch").hidden = true;
});

openEventStream("/ops/events", {
  onEvent: ({ type, data }) => type === "snapshot" && render(JSON.parse(data)),
  onState: (name, detail) => {
    const status = $("connection-status");
    status.dataset.state = name;
    status.textContent = { connecting: "Connecting…", open: "Live", retrying: "Reconnecting…", closed: "Disconnected" }[name] + (detail ? ` (${detail})` : "");
  },
});
