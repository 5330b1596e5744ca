// History of process data (uPlot): numbers on one axis per unit with every series' limits,
// booleans and enumerations as state bands, strings as change events; a rolling window or an
// absolute range in the plant's time zone; CSV of what is on screen; the view in the URL.
import { $, el, getJSON, toast } from "./api.js";
import { fromPlantInput, label, plantTime, plantZone, show, tags, timeAxis, toPlantInput, tzDate, unitOf } from "./meta.js";
import { limitsBySeries } from "./overview.js";
import { downloadCsv } from "./csv.js";
import { bandRows, changeEvents } from "./states.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const LIMITS = { lsl: [6, 3], usl: [6, 3], lcl: [2, 3], ucl: [2, 3] };
let chart = null;
let chartKey = "";
let range = null; // {start, end} ms: a zoom or an absolute range; null: the rolling window
let lastBody = null;
let wanted = null; // tags named in the URL, applied once the tag list is known

export const selectedTags = () => Array.from($("tag-picker").selectedOptions, (o) => o.value);
const isState = (t) => t && (t.kind === "bool" || Object.keys(t.enum || {}).length > 0);

export function renderPicker() {
  const picker = $("tag-picker");
  const chosen = new Set(wanted || selectedTags());
  const filter = $("tag-filter").value.toLowerCase();
  const options = [...tags.values()]
    .filter((t) => `${t.name} ${t.label}`.toLowerCase().includes(filter) || chosen.has(t.name))
    .map((t) => {
      const o = el("option", { value: t.name }, `${t.label}${t.unit ? ` [${t.unit}]` : ""} · ${t.device}`);
      o.selected = chosen.has(t.name);
      return o;
    });
  picker.replaceChildren(...options);
  if (wanted) wanted = null;
  // First look: a series with limits (drawn with them), else the first numeric one.
  if (!chosen.size) {
    const numeric = options.filter((o) => tags.get(o.value)?.kind === "num" && !isState(tags.get(o.value)));
    const first = numeric.find((o) => limitsBySeries.has(o.value)) || numeric[0];
    if (first) first.selected = true;
  }
}

const chartWidth = () => Math.max(280, $("chart").clientWidth || window.innerWidth - 32);

function currentRange() {
  if (range) return range;
  const end = Date.now();
  return { start: end - Number($("window").value), end };
}

// The view in the URL, so a link shows the same tags and time.
function saveView() {
  const params = new URLSearchParams({ tags: selectedTags().join(",") });
  if (range) { params.set("start", range.start); params.set("end", range.end); } else params.set("window", $("window").value);
  history.replaceState(null, "", `#history?${params}`);
}

export function loadView(query) {
  const params = new URLSearchParams(query);
  if (params.get("tags")) wanted = params.get("tags").split(",").filter(Boolean);
  if (params.get("window")) $("window").value = params.get("window");
  const start = Number(params.get("start")), end = Number(params.get("end"));
  if (start && end > start) setRange({ start, end });
}

function setRange(r) {
  range = r;
  $("live").checked = !r;
  $("reset-zoom").hidden = !r;
  if (r) { $("range-from").value = toPlantInput(r.start); $("range-to").value = toPlantInput(r.end); }
}

// One uPlot table per series ([x, y...]); uPlot.join aligns them on one x axis.
function tablesOf(series) {
  return series.map((s) => {
    const x = s.t.map((t) => t / 1000);
    if (s.mode === "minmax") return [x, s.mean, s.min, s.max];
    return [x, s.v];
  });
}

// Scales by unit: series sharing a unit share an axis; axes alternate left and right.
function scaleOf(s) {
  return `u:${s.unit || label(s.name)}`;
}

function buildSpec(numeric) {
  const series = [{}];
  const bands = [];
  const scales = { x: { time: true } };
  const axes = [timeAxis()];
  const seen = [];
  numeric.forEach((s, i) => {
    const stroke = COLORS[i % COLORS.length];
    const scale = scaleOf(s);
    if (!seen.includes(scale)) {
      seen.push(scale);
      scales[scale] = {};
      axes.push({ scale, side: seen.length % 2 ? 3 : 1, size: 64, stroke: seen.length > 1 ? stroke : "#1d2329", grid: { show: seen.length === 1 },
        label: s.unit || label(s.name), labelSize: 18, values: (u, ticks) => ticks.map((v) => +v.toFixed(6)) });
    }
    series.push({ label: label(s.name), scale, stroke, width: 1.5, spanGaps: false });
    if (s.mode === "minmax") {
      series.push({ label: `${label(s.name)} min`, scale, stroke, width: 0.5 });
      series.push({ label: `${label(s.name)} max`, scale, stroke, width: 0.5 });
      bands.push({ series: [series.length - 1, series.length - 2], fill: `${stroke}33` });
    }
  });
  return { series, bands, scales, axes };
}

// Every series' limits as dashed lines in its own colour and on its own axis.
function addLimits(numeric, data, spec) {
  numeric.forEach((s, i) => {
    const l = limitsBySeries.get(s.name);
    if (!l) return;
    for (const [key, dash] of Object.entries(LIMITS)) {
      if (l[key] == null) continue;
      spec.series.push({ label: `${label(s.name)} ${key.toUpperCase()}`, scale: scaleOf(s), stroke: COLORS[i % COLORS.length], width: 1, dash, points: { show: false }, limit: true });
      data.push(data[0].map(() => l[key]));
    }
  });
}

function renderLegend(numeric) {
  const items = numeric.map((s, i) => {
    const last = s.mode === "minmax" ? s.mean.findLast((v) => v != null) : s.v.findLast((v) => v != null);
    const l = limitsBySeries.get(s.name);
    const limits = l ? ["lsl", "lcl", "ucl", "usl"].filter((k) => l[k] != null).map((k) => `${k.toUpperCase()} ${show(s.name, l[k])}`).join(" · ") : "";
    return el("span", { class: "item" }, el("i", { style: `background:${COLORS[i % COLORS.length]}` }),
      el("b", {}, label(s.name)), ` ${show(s.name, last)}${unitOf(s.name) ? ` ${unitOf(s.name)}` : ""}`,
      limits ? el("small", { class: "muted" }, ` (${limits})`) : null);
  });
  $("legend").replaceChildren(...items);
}

export async function refreshChart() {
  const names = selectedTags();
  saveView();
  if (!names.length) return;
  const { start, end } = currentRange();
  const params = new URLSearchParams(names.map((n) => ["tag", n]));
  params.set("start", start); params.set("end", end); params.set("points", Math.floor(chartWidth() / 2));
  const body = lastBody = await getJSON(`api/history?${params}`);
  const states = body.series.filter((s) => isState(tags.get(s.name) || s) && s.kind !== "str");
  const numeric = body.series.filter((s) => s.kind === "num" && !states.includes(s));
  $("bands").replaceChildren(...bandRows(states, start, end));
  $("events").replaceChildren(changeEvents(body.series.filter((s) => s.kind === "str")));
  const count = body.series.reduce((n, s) => n + s.t.length, 0);
  $("chart-info").textContent = `${count} points · ${plantTime(start)} – ${plantTime(end)} (${plantZone()})`;
  renderLegend(numeric);
  if (!numeric.length) { if (chart) { chart.destroy(); chart = null; chartKey = ""; } return; }
  // The range's ends join the x values, so limits are drawn across the whole range.
  const data = uPlot.join([[[start / 1000, end / 1000]], ...tablesOf(numeric)]);
  const spec = buildSpec(numeric);
  addLimits(numeric, data, spec);
  const key = spec.series.map((s) => s.label).join("|");
  if (chart && key === chartKey) { chart.setData(data); chart.setScale("x", { min: start / 1000, max: end / 1000 }); return; }
  if (chart) chart.destroy();
  chartKey = key;
  chart = new uPlot({
    width: chartWidth(), height: 320, series: spec.series, bands: spec.bands, scales: spec.scales,
    axes: spec.axes, tzDate, legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: { setSelect: [onSelect] },
  }, data, $("chart"));
  chart.setScale("x", { min: start / 1000, max: end / 1000 });
  window.edgeChart = chart; // for the browser test and for debugging in the console
}

// Drag-select: ask the server for the selected range instead of stretching the old points.
function onSelect(u) {
  if (u.select.width < 4) return;
  const start = Math.floor(u.posToVal(u.select.left, "x") * 1000);
  const end = Math.ceil(u.posToVal(u.select.left + u.select.width, "x") * 1000);
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  setRange({ start, end });
  refreshChart();
}

function applyAbsolute() {
  const start = fromPlantInput($("range-from").value), end = fromPlantInput($("range-to").value);
  if (start == null || end == null || end <= start) { toast("Give a start before the end (plant time).", "bad"); return; }
  setRange({ start, end });
  refreshChart();
}

function exportCsv() {
  if (!lastBody) return;
  downloadCsv(lastBody, `history-${toPlantInput(Date.now()).replaceAll(":", "")}.csv`);
}

export function initHistory() {
  $("tag-filter").addEventListener("input", renderPicker);
  $("tag-picker").addEventListener("change", () => refreshChart());
  $("window").addEventListener("change", () => { setRange(null); refreshChart(); });
  $("reset-zoom").addEventListener("click", () => { setRange(null); refreshChart(); });
  $("live").addEventListener("change", () => { if ($("live").checked) { setRange(null); refreshChart(); } });
  $("range-apply").addEventListener("click", applyAbsolute);
  $("csv").addEventListener("click", exportCsv);
  $("share").addEventListener("click", () => navigator.clipboard?.writeText(location.href).then(() => toast("Link copied")).catch(() => toast(location.href)));
  for (const node of document.querySelectorAll(".tz-name")) node.textContent = plantZone();
  const now = Date.now();
  $("range-from").value = toPlantInput(now - 3600_000);
  $("range-to").value = toPlantInput(now);
  window.addEventListener("resize", () => chart && chart.setSize({ width: chartWidth(), height: 320 }));
}
