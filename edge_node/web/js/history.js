// History chart (uPlot): pick tags, a window or a drag-selected range; every range is asked
// of the server downsampled to about one point per two pixels, so zooming in shows detail.
import { $, el, getJSON } from "./api.js";
import { limitsBySeries } from "./overview.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const LIMIT_STYLES = { lsl: "#c62828", usl: "#c62828", lcl: "#b26a00", ucl: "#b26a00", mean: "#6b7580" };
let tags = [];
let chart = null;
let chartKey = "";
let zoom = null; // {start, end} in ms while the user looks at a selected range

export function selectedTags() {
  return Array.from($("tag-picker").selectedOptions, (o) => o.value);
}

export async function refreshTags() {
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
  // First look: a series with limits (drawn as lines), else the first numeric one.
  const numeric = options.filter((o) => tags.find((t) => t.name === o.value)?.kind === "num");
  const first = numeric.find((o) => limitsBySeries.has(o.value)) || numeric[0];
  if (!chosen.size && first) first.selected = true;
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

// With one series charted, its limits are drawn as dashed horizontal lines.
function withLimits(numeric, data, spec) {
  const l = numeric.length === 1 ? limitsBySeries.get(numeric[0].name) : null;
  if (!l) return;
  for (const [key, stroke] of Object.entries(LIMIT_STYLES)) {
    if (l[key] == null) continue;
    spec.series.push({ label: key.toUpperCase(), stroke, width: 1, dash: [6, 4], points: { show: false } });
    data.push(data[0].map(() => l[key]));
  }
}

function renderEvents(series) {
  const items = [];
  for (const s of series) s.t.forEach((t, i) => items.push([t, s.name, s.v ? s.v[i] : ""]));
  items.sort((a, b) => b[0] - a[0]);
  const rows = items.slice(0, 30).map(([t, name, v]) =>
    el("tr", {}, el("td", {}, new Date(t).toLocaleTimeString()), el("td", {}, name), el("td", {}, String(v))));
  $("events").replaceChildren(rows.length ? el("table", {}, el("tbody", {}, ...rows)) : "");
}

function range() {
  if (zoom) return zoom;
  const end = Date.now();
  return { start: end - Number($("window").value), end };
}

// Drag-select: ask the server for the selected range instead of stretching the old points.
function onSelect(u) {
  if (u.select.width < 4) return;
  const start = Math.floor(u.posToVal(u.select.left, "x") * 1000);
  const end = Math.ceil(u.posToVal(u.select.left + u.select.width, "x") * 1000);
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  zoom = { start, end };
  $("live").checked = false;
  $("reset-zoom").hidden = false;
  refreshChart();
}

export function resetZoom() {
  zoom = null;
  $("reset-zoom").hidden = true;
  $("live").checked = true;
  refreshChart();
}

export async function refreshChart() {
  const names = selectedTags();
  if (!names.length) return;
  const { start, end } = range();
  const params = new URLSearchParams(names.map((n) => ["tag", n]));
  params.set("start", start); params.set("end", end); params.set("points", Math.floor(chartWidth() / 2));
  const body = await getJSON(`api/history?${params}`);
  const numeric = body.series.filter((s) => s.kind !== "str");
  renderEvents(body.series.filter((s) => s.kind === "str"));
  const count = body.series.reduce((n, s) => n + s.t.length, 0);
  $("chart-info").textContent = `${count} points, ${body.series.map((s) => s.mode).join("/")}`;
  if (!numeric.length) { if (chart) { chart.destroy(); chart = null; chartKey = ""; } return; }
  const data = uPlot.join(tablesOf(numeric));
  const spec = uplotSeries(numeric);
  withLimits(numeric, data, spec);
  const key = spec.series.map((s) => s.label).join("|");
  if (chart && key === chartKey) { chart.setData(data); return; }
  if (chart) chart.destroy();
  chartKey = key;
  chart = new uPlot({
    width: chartWidth(), height: 320, series: spec.series, bands: spec.bands,
    scales: { x: { time: true } }, axes: [{}, { size: 60 }],
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: { setSelect: [onSelect] },
  }, data, $("chart"));
  window.edgeChart = chart; // for the browser test and for debugging in the console
}

export function initHistory() {
  $("tag-filter").addEventListener("input", renderPicker);
  $("tag-picker").addEventListener("change", () => refreshChart());
  $("window").addEventListener("change", () => { zoom = null; $("reset-zoom").hidden = true; refreshChart(); });
  $("reset-zoom").addEventListener("click", resetZoom);
  window.addEventListener("resize", () => chart && chart.setSize({ width: chartWidth(), height: 320 }));
}
