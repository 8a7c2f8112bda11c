// persona-proxy console. No framework, no build step, nothing from another origin: every text is set
// with textContent (never parsed as HTML), and the page's CSP forbids inline script.
"use strict";

const KEY = "persona-proxy-console-key";  // sessionStorage: this tab only, gone when it closes
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#c2185b", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#9e9d24", "#757575"];
const GROUPS = {admin: ["route", "client", "user", "target", "api", "role", "model", "kind"],
                client: ["route", "api", "user"], key: ["route", "api"]};
const $ = (id) => document.getElementById(id);
let viewer = null, overview = null, conversation = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function api(path, options = {}) {
  const headers = {authorization: "Bearer " + sessionStorage.getItem(KEY), ...(options.headers || {})};
  const response = await fetch(path, {...options, headers, cache: "no-store"});
  if (!response.ok) {
    let message = "HTTP " + response.status;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    const error = new Error(message); error.status = response.status; throw error;
  }
  return options.raw ? response : response.json();
}

function table(head, rows, numeric = []) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h, i) => el("th", numeric.includes(i) ? {class: "num"} : {}, h)))));
  const body = el("tbody");
  for (const row of rows) body.append(el("tr", {}, ...row.map((c, i) => el("td", numeric.includes(i) ? {class: "num"} : {}, c))));
  t.append(body);
  return t;
}

const fmt = (n, digits = 0) => n == null ? "–" : Number(n).toLocaleString("en-US", {maximumFractionDigits: digits});
const money = (n) => n == null ? "–" : "$" + Number(n).toFixed(n < 1 ? 4 : 2);
const mark = (value, yes, no, unknown = "?") => value == null ? el("span", {class: "muted"}, unknown)
  : value ? el("span", {class: "ok"}, yes) : el("span", {class: "bad"}, no);

function days(n) {
  if (n == null) return el("span", {class: "muted"}, "none known");
  const cls = n <= 0 ? "bad" : n <= 30 ? "warn" : "ok";
  return el("span", {class: cls}, n <= 0 ? "retired" : n + " days left");
}

// ---- sign-in ----
async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    overview = await api("/console/api/overview");
  } catch (error) {
    sessionStorage.removeItem(KEY);
    $("signin-error").textContent = error.message;
    return;
  }
  viewer = overview.viewer;
  $("signin-error").textContent = "";
  $("signin").hidden = true; $("console").hidden = false; $("signout").hidden = false;
  document.body.classList.toggle("client", viewer.role !== "admin");
  $("who").textContent = viewer.role === "admin" ? "admin" : "client " + (viewer.client || viewer.key_id);
  fillGroups();
  renderOverview();
  fillTry();
  const loads = [loadUsage()];
  if (viewer.role === "admin") loads.push(loadFidelity());
  if (viewer.role === "admin" && overview.stale) loads.push(probe());
  await Promise.all(loads);
  document.body.dataset.loaded = "yes";
}

// The grouping choices depend on who signed in (a key holder never groups by upstream or model).
function fillGroups() {
  const kind = viewer.role === "admin" ? "admin" : viewer.client ? "client" : "key";
  $("usage-by").replaceChildren(...GROUPS[kind].map((g) => el("option", {value: g}, g)));
}

function signOut() {
  sessionStorage.removeItem(KEY);
  location.reload();
}

// ---- routes and targets ----
function renderOverview() {
  const box = $("routes"); box.replaceChildren();
  if (viewer.role === "admin") {
    const rows = [];
    for (const route of overview.routes) for (const t of route.targets) {
      rows.push([route.name, t.role + (t.share ? " " + Math.round(t.share * 100) + "%" : ""), t.model + "@" + t.upstream,
                 mark(t.reachable, "reachable", "unreachable", "not checked"),
                 mark(t.model_exists, "present", "missing", "–"), t.shutdown_date || "–", days(t.days_left),
                 t.fine_tuning_until || "–", t.note || ""]);
    }
    box.append(table(["route", "role", "target", "upstream", "model", "shutdown", "left", "fine-tuning until", "note"],
                     rows));
  } else {
    box.append(table(["route", "next shutdown", "left"],
                     overview.routes.map((r) => [r.name, r.next_shutdown || "–", days(r.days_left)])));
  }
  timeline();
  renderClients();
}

function timeline() {
  const box = $("timeline"); box.replaceChildren();
  const today = Date.parse(overview.today);
  const items = [];
  for (const route of overview.routes) {
    for (const t of route.targets || [{name: "", shutdown_date: route.next_shutdown, role: ""}]) {
      const label = t.name ? route.name + " · " + t.role + " " + t.name : route.name;
      if (t.shutdown_date) items.push({label, date: Date.parse(t.shutdown_date), t});
    }
  }
  const cutoffs = new Set();
  for (const route of overview.routes) for (const t of route.targets || []) if (t.fine_tuning_until) cutoffs.add(t.fine_tuning_until);
  if (!items.length) { box.append(el("p", {class: "muted"}, "No target has a known shutdown date.")); return; }
  const end = Math.max(...items.map((i) => i.date), today + 86400000 * 30) + 86400000 * 7;
  // Drawn at the box's own width, so its text stays the size of the page's.
  const W = Math.max(600, box.clientWidth || 720), left = Math.min(420, W / 3), row = 22, H = 34 + row * items.length;
  const x = (d) => left + (W - left - 10) * (d - today) / (end - today);
  const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "retirement timeline"});
  items.sort((a, b) => a.date - b.date).forEach((item, i) => {
    const y = 20 + i * row, left_days = Math.round((item.date - today) / 86400000);
    chart.append(svg("text", {x: 4, y: y + 12}, item.label.slice(0, Math.floor(left / 6.5))));
    const bar = svg("rect", {x: x(today), y: y + 2, width: Math.max(2, x(item.date) - x(today)), height: 14, rx: 3,
                             fill: left_days <= 30 ? "#ef6c00" : "#1565c0"});
    bar.append(svg("title", {}, `${item.label}: shuts down ${new Date(item.date).toISOString().slice(0, 10)} (${left_days} days)`));
    chart.append(bar, svg("text", {x: x(item.date) + 4, y: y + 13}, new Date(item.date).toISOString().slice(0, 10)));
  });
  for (const cutoff of cutoffs) {
    const cx = x(Date.parse(cutoff));
    if (cx < left || cx > W) continue;
    const line = svg("line", {x1: cx, x2: cx, y1: 10, y2: H, stroke: "#c62828", "stroke-dasharray": "4 3"});
    line.append(svg("title", {}, "last day for new fine-tuning jobs: " + cutoff));
    const right = cx > W - 160;
    chart.append(line, svg("text", {x: right ? cx - 3 : cx + 3, y: 10, "text-anchor": right ? "end" : "start"},
                           "last fine-tuning jobs " + cutoff));
  }
  chart.append(svg("text", {x: left, y: H - 2}, "today " + overview.today));
  box.append(chart);
}

// ---- clients and limits ----
function renderClients() {
  const box = $("clients"); box.replaceChildren();
  if (!overview.clients.length) {
    box.append(el("p", {class: "muted"}, viewer.role === "admin" ? "No [clients.NAME] in the config: every key reaches every route without limits."
                                                                 : "This key has no named client and no limits."));
    return;
  }
  for (const c of overview.clients) {
    const used = c.used || {};
    const rows = [];
    const limit = (name, value, cap, resets) => rows.push([name, fmt(value, 4), cap == null ? "no limit" : fmt(cap, 4),
      cap ? el("div", {class: "meter", title: Math.round(100 * (value || 0) / cap) + "%"},
               el("i", {style: `width:${Math.min(100, 100 * (value || 0) / cap)}%`})) : "", resets]);
    const windowResets = used.window_resets_in_s != null ? "in " + used.window_resets_in_s + " s" : "";
    limit("requests this minute", used.requests, c.limits.rpm, windowResets);
    limit("tokens this minute", used.tokens, c.limits.tpm, windowResets);
    limit("in flight", used.in_flight, c.limits.max_parallel, "");
    limit("spent (USD" + (c.limits.budget_period ? ", this " + c.limits.budget_period : "") + ")", used.spent_usd, c.limits.budget_usd,
          used.period_resets_in_s != null ? "in " + Math.round(used.period_resets_in_s / 3600) + " h" : "");
    const head = el("h3", {}, c.client + " · routes: " + c.routes.join(", ") + (c.note ? " · " + c.note : ""));
    box.append(head, table(["limit", "used", "of", "", "resets"], rows, [1, 2]));
    const perUser = Object.entries(c.per_user || {}).map(([k, v]) => k.replace("_", " ") + " " + v).join(", ");
    if (perUser) box.append(el("p", {class: "hint"}, "and for each end user: " + perUser));
    if (c.keys) box.append(el("p", {class: "hint"}, "keys: " + c.keys.join(", ") + " (from " + c.key_env + ") · counted in " + c.source));
  }
}

// ---- usage ----
async function loadUsage() {
  const by = $("usage-by").value || "route", span = $("usage-days").value;
  try {
    const data = await api(`/console/api/usage?by=${encodeURIComponent(by)}&days=${encodeURIComponent(span)}`);
    renderUsage(data);
  } catch (error) {
    $("usage-chart").replaceChildren(el("p", {class: "error"}, error.message));
  }
}

function renderUsage(data) {
  const measure = $("usage-measure").value;
  const series = data.series.map((s, i) => ({name: s.name, values: s[measure], color: COLORS[i % COLORS.length]}));
  lineChart($("usage-chart"), data.days, series, {label: measure, empty: data.note || "No usage in this range."});
  const rows = data.series.map((s) => [s.name, fmt(s.total.requests), fmt(s.total.errors), fmt(s.total.tokens),
                                       money(s.total.cost_usd)]);
  const box = $("usage-table"); box.replaceChildren(table([data.by, "requests", "errors", "tokens", "cost"], rows, [1, 2, 3, 4]));
  if (data.unpriced_models.length) box.append(el("p", {class: "hint"}, "no price for: " + data.unpriced_models.join(", ")));
  const perDay = el("details", {}, el("summary", {}, "per day"),
    table(["day", ...data.series.map((s) => s.name)],
          data.days.map((d, i) => [d, ...data.series.map((s) => measure === "cost_usd" ? money(s[measure][i]) : fmt(s[measure][i]))]),
          data.series.map((_, i) => i + 1)));
  box.append(perDay);
}

function lineChart(box, xs, series, {label, empty, min = null, max = null, reference = null}) {
  box.replaceChildren();
  if (!series.length || !series.some((s) => s.values.some((v) => v != null && v !== 0))) {
    box.append(el("p", {class: "muted"}, empty)); return;
  }
  const W = 720, H = 240, L = 56, R = 10, T = 10, B = 26;
  const values = series.flatMap((s) => s.values.filter((v) => v != null));
  const lo = min ?? 0, hi = max ?? Math.max(...values, reference ?? 0, 1e-9);
  const x = (i) => L + (W - L - R) * (xs.length === 1 ? 0.5 : i / (xs.length - 1));
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / ((hi - lo) || 1));
  const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label + " per day"});
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4;
    chart.append(svg("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee"}),
                 svg("text", {x: L - 4, y: y(v) + 4, "text-anchor": "end"}, fmt(v, hi < 10 ? 2 : 0)));
  }
  const every = Math.max(1, Math.ceil(xs.length / 8));
  xs.forEach((d, i) => { if (i % every === 0) chart.append(svg("text", {x: x(i), y: H - 8, "text-anchor": "middle"}, d.slice(5))); });
  if (reference != null) {
    const line = svg("line", {x1: L, x2: W - R, y1: y(reference), y2: y(reference), stroke: "#333", "stroke-dasharray": "6 4"});
    line.append(svg("title", {}, "training data: " + reference));
    chart.append(line, svg("text", {x: W - R, y: y(reference) - 4, "text-anchor": "end"}, "training data " + reference));
  }
  for (const s of series) {
    const points = s.values.map((v, i) => v == null ? null : [x(i), y(v), i, v]).filter(Boolean);
    chart.append(svg("polyline", {points: points.map((p) => p[0] + "," + p[1]).join(" "), fill: "none",
                                  stroke: s.color, "stroke-width": 2, "data-series": s.name}));
    for (const [px, py, i, v] of points) {
      const dot = svg("circle", {cx: px, cy: py, r: 3, fill: s.color});
      dot.append(svg("title", {}, `${xs[i]} · ${s.name}: ${fmt(v, 4)}`));
      chart.append(dot);
    }
  }
  box.append(chart, el("div", {class: "legend"}, ...series.map((s) => el("span", {style: "--swatch:" + s.color}, s.name))));
}

// ---- live fidelity ----
async function loadFidelity() {
  const box = $("fidelity");
  try {
    const data = await api("/console/api/fidelity?days=" + encodeURIComponent($("usage-days").value));
    box.replaceChildren();
    if (!data.routes.length) box.append(el("p", {class: "muted"}, "No route names a dataset: live fidelity needs the training data as its reference."));
    for (const route of data.routes) {
      const chart = el("div", {class: "chart"});
      box.append(el("h3", {}, route.route), chart);
      const series = route.targets.map((t, i) => {
        const byDay = Object.fromEntries(t.days.map((d) => [d.day, d.fidelity]));
        return {name: t.target + " (" + t.role + ")", values: data.days.map((d) => byDay[d] ?? null), color: COLORS[i % COLORS.length]};
      });
      lineChart(chart, data.days, series, {label: "fidelity", min: 0, max: 1, reference: route.reference,
                                           empty: "No measured replies in this range (set [fidelity] sample, or wait for traffic)."});
      chart.append(table(["target", "role", "replies", "latest"], route.targets.map((t) => [t.target, t.role,
        fmt(t.days.reduce((n, d) => n + d.replies, 0)), fmt(t.days[t.days.length - 1].fidelity, 3)]), [2, 3]));
    }
  } catch (error) {
    box.replaceChildren(el("p", {class: "error"}, error.message));
  }
}

async function probe() {
  try {
    const found = await api("/console/api/probe", {method: "POST"});
    overview.routes = found.routes;
    renderOverview();
    fillTargets();
  } catch (error) {
    $("routes").append(el("p", {class: "error"}, error.message));
  }
}

// ---- try it ----
function fillTry() {
  const select = $("try-route");
  select.replaceChildren(...overview.routes.map((r) => el("option", {value: r.name}, r.name)));
  const demo = overview.routes.find((r) => r.name.includes("demo"));
  if (demo) select.value = demo.name;
  fillTargets();
}

function fillTargets() {
  const route = overview.routes.find((r) => r.name === $("try-route").value);
  const select = $("try-target"), before = select.value;
  select.replaceChildren(el("option", {value: ""}, "as the route serves"),
                         ...((route && route.targets) || []).map((t) => el("option", {value: t.name}, t.role + ": " + t.name)));
  select.value = before && [...select.options].some((o) => o.value === before) ? before : "";
}

async function say(text) {
  const log = $("try-log");
  conversation.push({role: "user", content: text});
  log.append(el("div", {class: "user"}, text));
  const reply = el("div", {class: "assistant", "data-name": $("try-route").value});
  log.append(reply);
  const route = $("try-route").value;
  const request = viewer.role === "admin"
    ? ["/console/api/try", {route, target: $("try-target").value || null, messages: conversation}]
    : ["/v1/chat/completions", {model: route, stream: true, messages: conversation}];
  let text_so_far = "";
  try {
    const response = await api(request[0], {method: "POST", raw: true, body: JSON.stringify(request[1]),
                                            headers: {"content-type": "application/json"}});
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const event = JSON.parse(data);
          if (event.error) throw new Error(event.error.message);
          const piece = ((event.choices || [])[0] || {}).delta?.content;
          if (piece) { text_so_far += piece; reply.textContent = text_so_far; log.scrollTop = log.scrollHeight; }
        }
      }
    }
  } catch (error) {
    reply.append(el("span", {class: "error"}, " [" + error.message + "]"));
  }
  conversation.push({role: "assistant", content: text_so_far});
}

// ---- wiring ----
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("key").value.trim()); $("key").value = ""; });
  $("signout").addEventListener("click", signOut);
  $("usage-by").addEventListener("change", loadUsage);
  $("usage-days").addEventListener("change", () => { loadUsage(); if (viewer.role === "admin") loadFidelity(); });
  $("usage-measure").addEventListener("change", loadUsage);
  $("probe").addEventListener("click", probe);
  $("try-route").addEventListener("change", () => { fillTargets(); conversation = []; $("try-log").replaceChildren(); });
  $("try-target").addEventListener("change", () => { conversation = []; $("try-log").replaceChildren(); });
  $("try-reset").addEventListener("click", () => { conversation = []; $("try-log").replaceChildren(); });
  $("try-say").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("try-input").value.trim();
    if (text) { $("try-input").value = ""; say(text); }
  });
  $("try-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("try-say").requestSubmit(); }
  });
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
});
