// Edge node page: gateway cards, latest values and a live uPlot chart of the picked tags.
// Data comes from the edge's own HTTP API (see /docs); times are epoch milliseconds.
"use strict";

const REFRESH_MS = 1500;
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const $ = (id) => document.getElementById(id);
let tags = [];
let chart = null;
let chartKey = "";

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${s.toFixed(0)} s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function duration(s) {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function gatewayCard(g) {
  const s = g.status;
  const fields = [
    ["version", s.version || "?"],
    ["uptime", s.uptime_s ? duration(s.uptime_s) : "?"],
    ["buffer", `${s.buffer_depth || 0} readings`],
    ["last status", ago(g.received_at)],
  ];
  const dropped = Object.entries(s.dropped || {}).filter(([, n]) => n > 0);
  if (dropped.length) fields.push(["dropped", dropped.map(([k, n]) => `${k} ${n}`).join(", ")]);
  for (const c of s.connectors || []) fields.push([c.name, c.state + (c.last_error ? ` (${c.last_error})` : "")]);
  const dl = el("dl");
  for (const [k, v] of fields) dl.append(el("dt", {}, k), el("dd", {}, String(v)));
  const badge = el("span", { class: `badge ${g.online ? "ok" : "bad"}` }, g.online ? "online" : "offline");
  return el("div", { class: "card" }, el("h3", {}, g.gateway, badge), dl);
}

async function refreshGateways() {
  const gateways = await getJSON("api/gateways");
  if (gateways.length) $("gateways").replaceChildren(...gateways.map(gatewayCard));
}

async function refreshHealth() {
  const h = await getJSON("api/health");
  $("edge-id").textContent = h.edge;
  $("health").textContent = h.mqtt_connected ? "broker connected" : "broker unreachable";
  $("health").className = `badge ${h.mqtt_connected ? "ok" : "bad"}`;
}

function formatValue(v) {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v);
}

async function refreshLatest() {
  const rows = (await getJSON("api/latest")).map((x) =>
    el("tr", { class: x.quality }, el("td", {}, x.name), el("td", { class: "num" }, formatValue(x.value)),
      el("td", {}, x.quality + (x.reason ? `: ${x.reason}` : "")), el("td", {}, new Date(x.t).toLocaleTimeString())));
  $("latest").tBodies[0].replaceChildren(...rows);
}

async function refreshTags() {
  const fresh = await getJSON("api/tags");
  if (fresh.length === tags.length) return;
  tags = fresh;
  renderPicker();
}

function renderPicker() {
  const picker = $("tag-picker");
  const chosen = new Set(selectedTags());
  const filter = $("tag-filter").value.toLowerCase();
  const options = tags.filter((t) => t.name.toLowerCase().includes(filter) || chosen.has(t.name))
    .map((t) => { const o = el("option", { value: t.name }, `${t.name}${t.unit ? ` [${t.unit}]` : ""}`); o.selected = chosen.has(t.name); return o; });
  picker.replaceChildren(...options);
  if (!chosen.size && options.length) options[0].selected = true;
}

function selectedTags() {
  return Array.from($("tag-picker").selectedOptions, (o) => o.value);
}

function chartWidth() {
  return Math.max(280, $("chart").clientWidth || window.innerWidth - 32);
}

// One uPlot table per series ([x, y...]); uPlot.join aligns them on one x axis.
function tablesOf(series) {
  return series.map((s) => {
    const x = s.t.map((t) => t / 1000);
    if (s.mode === "minmax") return [x, s.mean, s.min, s.max];
    return [x, s.v.map((v) => (typeof v === "boolean" ? Number(v) : v))];
  });
}

// Downsampled series: the mean as a line, min..max as a shaded band, so spikes stay visible.
function uplotSeries(series) {
  const out = [{}];
  const bands = [];
  series.forEach((s, i) => {
    const stroke = COLORS[i % COLORS.length];
    out.push({ label: s.name, stroke, width: 1.5, spanGaps: false });
    if (s.mode === "minmax") {
      out.push({ label: `${s.name} min`, stroke, width: 0.5 });
      out.push({ label: `${s.name} max`, stroke, width: 0.5 });
      bands.push({ series: [out.length - 1, out.length - 2], fill: `${stroke}33` });
    }
  });
  return { series: out, bands };
}

function renderEvents(series) {
  const items = [];
  for (const s of series) s.t.forEach((t, i) => items.push([t, s.name, s.v[i]]));
  items.sort((a, b) => b[0] - a[0]);
  const rows = items.slice(0, 30).map(([t, name, v]) =>
    el("tr", {}, el("td", {}, new Date(t).toLocaleTimeString()), el("td", {}, name), el("td", {}, String(v))));
  $("events").replaceChildren(rows.length ? el("table", {}, el("tbody", {}, ...rows)) : "");
}

async function refreshChart() {
  const names = selectedTags();
  if (!names.length) return;
  const end = Date.now();
  const start = end - Number($("window").value);
  const params = new URLSearchParams(names.map((n) => ["tag", n]));
  params.set("start", start); params.set("end", end); params.set("points", Math.floor(chartWidth() / 2));
  const body = await getJSON(`api/history?${params}`);
  const numeric = body.series.filter((s) => s.kind !== "str");
  renderEvents(body.series.filter((s) => s.kind === "str"));
  const count = body.series.reduce((n, s) => n + s.t.length, 0);
  $("chart-info").textContent = `${count} points, ${body.series.map((s) => s.mode).join("/")}`;
  const key = numeric.map((s) => `${s.name}:${s.mode}`).join("|");
  const data = numeric.length ? uPlot.join(tablesOf(numeric)) : [[]];
  if (!numeric.length) { if (chart) { chart.destroy(); chart = null; chartKey = ""; } return; }
  if (chart && key === chartKey) { chart.setData(data); return; }
  if (chart) chart.destroy();
  chartKey = key;
  const { series, bands } = uplotSeries(numeric);
  chart = new uPlot({ width: chartWidth(), height: 320, series, bands,
    scales: { x: { time: true } }, axes: [{}, { size: 60 }] }, data, $("chart"));
}

async function tick() {
  const jobs = [refreshHealth(), refreshGateways(), refreshLatest(), refreshTags()];
  if ($("live").checked) jobs.push(refreshChart());
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) { $("health").textContent = "edge unreachable"; $("health").className = "badge bad"; }
  setTimeout(tick, REFRESH_MS);
}

$("tag-filter").addEventListener("input", renderPicker);
$("tag-picker").addEventListener("change", () => refreshChart());
$("window").addEventListener("change", () => refreshChart());
window.addEventListener("resize", () => chart && chart.setSize({ width: chartWidth(), height: 320 }));
tick();
