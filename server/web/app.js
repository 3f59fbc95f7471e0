// The sluice server's page: plain JavaScript over the REST API (see
// /api/openapi.json). Data is written with textContent only, never as HTML.
"use strict";

const KEY = "sluice-api-key";
const $ = (sel) => document.querySelector(sel);
let selected = null;   // the connection whose runs are shown
let logRun = null;     // the run whose logs are shown
let logAfter = 0;      // the last log line shown
let timer = null;

function key() { return sessionStorage.getItem(KEY); }

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + key() } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    signOut("The server refused the key: it is wrong or was revoked.");
    throw new Error("unauthorized");
  }
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    throw new Error(data && data.error ? data.error : resp.status + " " + resp.statusText);
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return d.toLocaleString();
}

function duration(s) {
  if (s === undefined || s === null) return "";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return Math.round(s / 60) + " min";
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  if (timer) clearInterval(timer);
  timer = null;
  $("#app").hidden = true;
  $("#sign-out").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function signIn(k) {
  sessionStorage.setItem(KEY, k);
  try {
    const info = await api("GET", "/api/info");
    $("#status-line").textContent = "server " + info.version + " · " + info.goos + "/" + info.goarch + " · store " + info.store;
  } catch (e) {
    if (e.message !== "unauthorized") signOut(e.message);
    return;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  await refresh();
  if (!timer) timer = setInterval(refresh, 1500);
}

function message(text, isError) {
  const m = $("#action-message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

async function act(name, action, body) {
  try {
    const res = await api("POST", "/api/connections/" + encodeURIComponent(name) + "/" + action, body);
    message(name + ": " + (res.message || (res.paused ? "paused" : "resumed")));
  } catch (e) {
    if (e.message !== "unauthorized") message(name + ": " + e.message, true);
  }
  await refresh();
}

// reconcile makes tbody's rows match items, in order, reusing the row of
// each key: rows are updated in place, so a row a user is about to click
// is not swapped for a copy under the pointer at the next refresh.
function reconcile(tbody, items, keyOf, create, update) {
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  let prev = null;
  for (const item of items) {
    const k = String(keyOf(item));
    let tr = existing.get(k);
    if (tr) existing.delete(k);
    else { tr = create(item); tr.dataset.key = k; }
    update(tr, item);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of existing.values()) tr.remove();
}

function cells(tr, n) {
  for (let i = 0; i < n; i++) tr.append(el("td"));
  return tr.children;
}

function setText(node, text) {
  const t = text === undefined || text === null ? "" : String(text);
  if (node.textContent !== t) node.textContent = t;
}

function setBadge(td, status) {
  let b = td.firstChild;
  if (!b) { b = el("span"); td.append(b); }
  setText(b, status);
  b.className = "badge " + status;
}

function createConnectionRow(c) {
  const tr = document.createElement("tr");
  const td = cells(tr, 8);
  td[0].className = "name";
  td[5].className = "num";
  td[6].className = "num";
  for (const action of ["sync", "pause", "resync"]) {
    const btn = el("button");
    btn.type = "button";
    btn.dataset.action = action;
    btn.addEventListener("click", (ev) => {
      ev.stopPropagation();
      const name = tr.dataset.name;
      if (btn.dataset.action === "resync") openResync(name);
      else act(name, btn.dataset.action);
    });
    td[7].append(btn);
  }
  tr.addEventListener("click", () => { selected = tr.dataset.name; refresh(); });
  return tr;
}

function updateConnectionRow(tr, c) {
  const td = tr.children;
  tr.dataset.name = c.name;
  tr.dataset.status = c.status;
  tr.className = c.name === selected ? "selected" : "";
  setText(td[0], c.name);
  setBadge(td[1], c.status);
  setText(td[2], c.schedule);
  const due = c.next_run_at && new Date(c.next_run_at) <= new Date();
  setText(td[3], c.paused ? "paused" : due ? "due now" : when(c.next_run_at));
  const r = c.last_run;
  setText(td[4], r ? when(r.started_at) : "");
  setText(td[5], r ? r.rows : "");
  setText(td[6], r ? duration(r.duration_seconds) : "");
  const [sync, toggle, resync] = td[7].children;
  const noCode = !c.binary;
  setText(sync, "Sync now");
  sync.disabled = c.paused || noCode;
  toggle.dataset.action = c.paused ? "resume" : "pause";
  setText(toggle, c.paused ? "Resume" : "Pause");
  setText(resync, "Re-sync");
  resync.disabled = c.paused || noCode;
}

function openResync(name) {
  selected = name;
  $("#resync-panel").hidden = false;
  $("#resync-tables").value = "";
  refresh();
}

function chart(runs) {
  // Oldest on the left; bar height is the run's rows.
  const data = runs.slice(0, 40).reverse();
  const w = 640, h = 140, pad = 24;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "rows per run");
  const max = Math.max(1, ...data.map((r) => r.rows));
  const bw = data.length ? (w - 2 * pad) / data.length : 0;
  data.forEach((r, i) => {
    const bh = Math.max(1, (h - 2 * pad) * r.rows / max);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", pad + i * bw + 1);
    rect.setAttribute("y", h - pad - bh);
    rect.setAttribute("width", Math.max(1, bw - 2));
    rect.setAttribute("height", bh);
    rect.setAttribute("class", r.status);
    rect.dataset.run = r.id;
    const title = document.createElementNS(ns, "title");
    title.textContent = "run " + r.id + ": " + r.rows + " rows, " + r.status + ", " + when(r.started_at);
    rect.append(title);
    svg.append(rect);
  });
  const label = (x, y, text) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.textContent = text;
    svg.append(t);
  };
  label(2, pad - 8, max + " rows");
  if (data.length) {
    label(pad, h - 6, when(data[0].started_at));
    label(w - pad - 120, h - 6, when(data[data.length - 1].started_at));
  }
  const box = $("#chart");
  box.replaceChildren(svg);
}

function createRunRow(r) {
  const tr = document.createElement("tr");
  const td = cells(tr, 7);
  td[0].className = "num";
  td[4].className = "num";
  td[5].className = "tables";
  td[6].className = "error";
  tr.addEventListener("click", () => openLogs(Number(tr.dataset.run)));
  return tr;
}

function updateRunRow(tr, r) {
  const td = tr.children;
  tr.dataset.run = r.id;
  tr.dataset.status = r.status;
  tr.className = r.id === logRun ? "selected" : "";
  setText(td[0], r.id);
  setText(td[1], when(r.started_at));
  setText(td[2], r.trigger + (r.attempt > 1 ? " #" + r.attempt : ""));
  setBadge(td[3], r.status);
  setText(td[4], duration(r.duration_seconds));
  const sig = JSON.stringify(r.tables || []);
  if (td[5].dataset.sig !== sig) {
    td[5].dataset.sig = sig;
    td[5].replaceChildren(...(r.tables || []).map((t) => {
      const line = el("div", t.table + ": " + (t.upserts + t.updates + t.deletes) + " rows");
      line.dataset.table = t.table;
      line.title = t.upserts + " upserts, " + t.updates + " updates, " + t.deletes + " deletes, " + t.truncates + " truncates";
      return line;
    }));
  }
  setText(td[6], r.error || "");
}

async function openLogs(id) {
  logRun = id;
  logAfter = 0;
  $("#log-lines").textContent = "";
  $("#logs-run").textContent = id;
  $("#logs").hidden = false;
  await loadLogs();
}

async function loadLogs() {
  if (logRun === null) return;
  const id = logRun;
  for (;;) {
    const page = await api("GET", "/api/runs/" + id + "/logs?after=" + logAfter + "&limit=1000");
    if (id !== logRun) return;
    const pre = $("#log-lines");
    for (const l of page.lines) {
      pre.append(document.createTextNode(new Date(l.time).toLocaleTimeString() + " " + l.level.padEnd(7) + " " + l.message + "\n"));
    }
    logAfter = page.next_after;
    if (page.lines.length < 1000) return;
  }
}

let refreshing = false;
async function refresh() {
  if (refreshing || !key()) return;
  refreshing = true;
  try {
    const { connections } = await api("GET", "/api/connections");
    reconcile($("#connections tbody"), connections, (c) => c.name, createConnectionRow, updateConnectionRow);
    $("#no-connections").hidden = connections.length > 0;
    if (selected && !connections.some((c) => c.name === selected)) selected = null;
    $("#detail").hidden = !selected;
    if (selected) {
      $("#detail-name").textContent = selected;
      const { runs } = await api("GET", "/api/connections/" + encodeURIComponent(selected) + "/runs?limit=50");
      chart(runs);
      reconcile($("#runs tbody"), runs, (r) => r.id, createRunRow, updateRunRow);
    }
    await loadLogs();
  } catch (e) {
    if (e.message !== "unauthorized") $("#status-line").textContent = "error: " + e.message;
  } finally {
    refreshing = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const k = $("#key-input").value.trim();
    $("#key-input").value = "";
    if (k) signIn(k);
  });
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#logs-close").addEventListener("click", () => { logRun = null; $("#logs").hidden = true; });
  $("#resync-cancel").addEventListener("click", () => { $("#resync-panel").hidden = true; });
  $("#resync-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const tables = $("#resync-tables").value.split(",").map((s) => s.trim()).filter((s) => s);
    $("#resync-panel").hidden = true;
    if (selected) await act(selected, "resync", tables.length ? { tables } : {});
  });
  if (key()) signIn(key()); else signOut("");
});
