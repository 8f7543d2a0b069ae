// headrace console: live updates from the server's change feed (server-sent events), the
// attempt log streams, and nothing else. No request leaves this server.
"use strict";

const LETTERS = {
  WAITING_ON_DEPENDENCIES: "W", WAITING_FOR_RUNNER: "Q", RUNNING: "R", FINISHED: "F",
  FAILED: "X", CASCADE_FAILED: "C", TIMEDOUT: "T", CANCELED: "N", SKIPPED: "S", PAUSED: "P",
};

function say(text) {
  const live = document.getElementById("live-state");
  if (live) live.textContent = text;
}

function setStatusClass(node, status) {
  for (const cls of [...node.classList]) if (cls.startsWith("s-")) node.classList.remove(cls);
  node.classList.add("s-" + status);
  node.dataset.status = status;
}

function updateCell(change) {
  const cell = document.querySelector(`td[data-id="${CSS.escape(change.id)}"]`);
  if (cell) {
    setStatusClass(cell, change.status);
    cell.classList.toggle("is-late", !!change.late);
    const link = cell.querySelector("a");
    if (link) {
      link.textContent = LETTERS[change.status] || "?";
      let title = link.title.replace(/: [A-Z_]+(,|$)/, `: ${change.status}$1`);
      if (change.late && !/, late(,|$)/.test(title)) title = title.replace(/(: [A-Z_]+)/, "$1, late");
      link.title = title;
    }
  }
  const own = document.body.dataset.instance;
  if (own && own === change.id) {
    const badge = document.getElementById("instance-status");
    if (badge && badge.dataset.status !== change.status) {
      setStatusClass(badge, change.status);
      badge.textContent = change.status;
      scheduleRefresh(800);  // new attempt rows, times and errors
    }
  }
}

// Replace a part of the page; a keyboard user's focus inside it moves to the same link or
// control in the new part, so a live update never throws them back to the top.
function swapKeepingFocus(now, next) {
  const focused = document.activeElement;
  let key = null;
  if (focused && now.contains(focused)) {
    key = focused.id ? `#${CSS.escape(focused.id)}`
      : focused.getAttribute("href") ? `[href="${CSS.escape(focused.getAttribute("href"))}"]`
      : null;
  }
  now.replaceWith(next);
  if (key) {
    const again = next.querySelector(key);
    if (again) again.focus({ preventScroll: true });
  }
}

// Redraw one row of the pipelines page from a "summary" event: counts, flags, intervals.
function updateRow(summary) {
  const row = document.querySelector(`tr[data-pipeline="${CSS.escape(summary.pipeline)}"]`);
  if (!row) return;
  row.classList.toggle("failing", summary.failing > 0);
  row.classList.toggle("late", summary.late > 0);
  const counts = row.querySelector("td.counts");
  if (counts) {
    counts.replaceChildren();
    for (const status of Object.keys(summary.counts).sort()) {
      const span = document.createElement("span");
      span.className = `count s-${status}`;
      span.dataset.status = status;
      span.textContent = `${status} ${summary.counts[status]}`;
      counts.append(span, " ");
    }
    for (const [name, n] of [["failing", summary.failing], ["late", summary.late]]) {
      if (!n) continue;
      const flag = document.createElement("strong");
      flag.className = "flag";
      flag.textContent = `${name}: ${n}`;
      counts.append(flag);
    }
  }
  const health = row.querySelector("ol.health");
  if (health) {
    health.replaceChildren();
    health.setAttribute("aria-label", `latest ${summary.recent.length} intervals`);
    for (const h of summary.recent) {
      const item = document.createElement("li");
      item.className = `cell s-${h.status}${h.late ? " is-late" : ""}`;
      item.dataset.status = h.status;
      item.title = `${h.start}: ${h.status}${h.late ? " (late)" : ""}`;
      item.textContent = LETTERS[h.status] || "?";
      health.append(item);
    }
  }
}

let refreshTimer = null;
function scheduleRefresh(delay) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    await refreshParts();
  }, delay);
}

// Replace the parts of the page that changes affect, keeping focus and form inputs.
async function refreshParts() {
  const page = document.body.dataset.page;
  const gridUrl = document.body.dataset.grid;
  try {
    if (page === "pipeline" && gridUrl) {
      const response = await fetch(gridUrl, { headers: { Accept: "text/html" } });
      if (response.ok) {
        const host = document.getElementById("grid-host");
        const next = document.createElement("div");
        next.id = "grid-host";
        next.innerHTML = await response.text();
        swapKeepingFocus(host, next);
      }
    } else if (page === "pipelines" || page === "instance") {
      const response = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const selectors = page === "pipelines" ? ["table.pipelines tbody"]
        : ["dl.facts", "table.attempts", ".actions"];
      for (const sel of selectors) {
        const now = document.querySelector(sel), next = fresh.querySelector(sel);
        if (now && next) swapKeepingFocus(now, next);
      }
    }
  } catch (err) {
    say("could not refresh: " + err);
  }
}

function startLive() {
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("hello", () => { document.body.dataset.liveState = "open"; });
  const onPipelines = document.body.dataset.page === "pipelines";
  source.addEventListener("instances", (e) => {
    for (const change of JSON.parse(e.data).changes) updateCell(change);
  });
  // the pipelines page: the server sends each changed pipeline's row, worked out once for
  // every open page, so a change costs no page a request
  source.addEventListener("summary", (e) => updateRow(JSON.parse(e.data)));
  source.addEventListener("pipeline", (e) => {
    const change = JSON.parse(e.data);
    if (onPipelines) {
      const cell = document.querySelector(`tr[data-pipeline="${CSS.escape(change.pipeline)}"] td.state`);
      if (cell) { cell.textContent = change.state; cell.dataset.state = change.state; }
      else scheduleRefresh(500);  // a pipeline this page does not list yet
      return;
    }
    const state = document.getElementById("pipeline-state");
    if (state) { state.textContent = change.state; state.dataset.state = change.state; }
    scheduleRefresh(500);
  });
  // instances added, removed or too many changed at once: fetch the grid again, at a moment
  // of its own for each page, so a hundred open pages do not all ask in the same second
  source.addEventListener("planned", () => scheduleRefresh(500 + Math.random() * 4500));
  source.addEventListener("paused", (e) => {
    const paused = new Set(JSON.parse(e.data).components);
    for (const row of document.querySelectorAll("table.grid tr[data-component]")) {
      const head = row.querySelector("th[scope=row]");
      const now = paused.has(row.dataset.component);
      head.dataset.status = now ? "PAUSED" : "";
      let badge = head.querySelector(".badge");
      if (now && !badge) {
        badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "PAUSED";
        head.append(" ", badge);
      } else if (!now && badge) badge.remove();
    }
    if (document.body.dataset.page === "instance") scheduleRefresh(300);
  });
  source.addEventListener("resync", () => { source.close(); location.reload(); });
  source.onerror = () => { document.body.dataset.liveState = "reconnecting"; };
}

function startLogs() {
  const state = document.getElementById("log-state");
  const streams = document.querySelectorAll("pre[data-stream]");
  let open = streams.length;
  for (const pre of streams) {
    const source = new EventSource(pre.dataset.stream);
    source.addEventListener("hello", (e) => {
      const info = JSON.parse(e.data);
      if (state) {
        state.dataset.state = info.running ? "streaming" : "complete";
        state.textContent = info.running ? "streaming while the attempt runs…" : "";
      }
    });
    source.addEventListener("chunk", (e) => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(document.createTextNode(e.data));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", () => {
      source.close();
      pre.dataset.ended = "true";
      open -= 1;
      if (open === 0 && state) { state.dataset.state = "ended"; state.textContent = "log complete"; }
    });
    source.onerror = () => { if (pre.dataset.ended) source.close(); };
  }
}

document.addEventListener("DOMContentLoaded", () => {
  startLive();
  startLogs();
});
