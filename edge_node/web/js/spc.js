// Control chart (individuals and moving range) of one monitored series: centre line, the
// ±1σ/2σ/3σ zones from the cloud's limits, spec limits, and each point that violated a rule,
// named by the rule (GET /api/spc replays the same rules that raise alarms).
import { $, el, getJSON } from "./api.js";
import { label, plantTime, show, timeAxis, tzDate, unitOf } from "./meta.js";
import { limitsBySeries } from "./overview.js";

const RULES = {
  spec: "outside a spec limit",
  rule1: "beyond 3σ (a control limit)",
  rule2: "2 of 3 beyond 2σ, same side",
  rule3: "8 in a row on one side of the centre",
  rule4: "6 in a row rising or falling",
};
const ZONE = ["#d7f0de", "#fff3d6", "#fbe3e3"]; // within 1σ, 1-2σ, 2-3σ
let chart = null;
let mrChart = null;

export function renderSpcPicker() {
  const select = $("spc-tag");
  const current = select.value;
  const names = [...limitsBySeries.keys()].sort();
  if (names.join() === Array.from(select.options, (o) => o.value).join()) return;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, `${label(n)} · ${n.split("/")[1]}`)));
  if (names.includes(current)) select.value = current;
  else if (location.hash.includes("tag=")) select.value = new URLSearchParams(location.hash.split("?")[1]).get("tag");
  $("spc-note").textContent = names.length ? "" : "No series has limits yet: the cloud's master data (or monitoring.limits in the edge config) gives them.";
}

const width = () => Math.max(280, $("spc-chart").clientWidth || window.innerWidth - 32);
const line = (n, value) => Array(n).fill(value);

// Horizontal lines for centre, zones and limits; the zones are filled between σ lines.
function guides(body, n) {
  const series = [], data = [], bands = [];
  const push = (labelText, value, stroke, dash, width = 1) => {
    if (value == null) return -1;
    series.push({ label: labelText, stroke, dash, width, points: { show: false } });
    data.push(line(n, value));
    return series.length; // its index in the chart's series (0 is x)
  };
  if (body.centre != null && body.sigma != null) {
    const c = body.centre, s = body.sigma;
    const idx = {};
    for (const k of [-3, -2, -1, 1, 2, 3]) idx[k] = push(`${k > 0 ? "+" : "−"}${Math.abs(k)}σ`, c + k * s, "#b8c2cc", [2, 4], 0.5);
    push("CL", c, "#1d2329", [], 1);
    for (const [a, b, fill] of [[1, -1, ZONE[0]], [2, 1, ZONE[1]], [-1, -2, ZONE[1]], [3, 2, ZONE[2]], [-2, -3, ZONE[2]]]) {
      bands.push({ series: [idx[a], idx[b]], fill });
    }
  }
  const l = body.limits || {};
  push("UCL", l.ucl, "#b26a00", [6, 3]);
  push("LCL", l.lcl, "#b26a00", [6, 3]);
  push("USL", l.usl, "#c62828", [8, 3], 1.5);
  push("LSL", l.lsl, "#c62828", [8, 3], 1.5);
  return { series, data, bands };
}

function drawMain(body) {
  const x = body.t.map((t) => t / 1000);
  const marked = new Map(body.violations.map((v) => [v.i, v]));
  const flagged = body.v.map((v, i) => (marked.has(i) ? v : null));
  const g = guides(body, x.length);
  const opts = {
    width: width(), height: 300, tzDate, legend: { show: false },
    scales: { x: { time: true } },
    axes: [timeAxis(), { size: 64, label: unitOf(body.name) || label(body.name), labelSize: 18 }],
    series: [{}, ...g.series, { label: label(body.name), stroke: "#1f77b4", width: 1.5, points: { show: x.length < 300, size: 4 } },
      { label: "violation", stroke: "#c62828", width: 0, points: { show: true, size: 9, fill: "#c62828" }, paths: () => null }],
    bands: g.bands,
  };
  if (chart) chart.destroy();
  chart = new uPlot(opts, [x, ...g.data, body.v, flagged], $("spc-chart"));
  window.spcChart = chart;
}

function drawMr(body) {
  const x = body.t.map((t) => t / 1000);
  const opts = {
    width: width(), height: 140, tzDate, legend: { show: false }, scales: { x: { time: true } },
    axes: [timeAxis(), { size: 64, label: "MR", labelSize: 18 }],
    series: [{}, { label: "MR", stroke: "#6b7580", width: 1 }, { label: "MR UCL", stroke: "#b26a00", dash: [6, 3], width: 1, points: { show: false } },
      { label: "MR̄", stroke: "#1d2329", width: 0.5, points: { show: false } }],
  };
  if (mrChart) mrChart.destroy();
  mrChart = new uPlot(opts, [x, body.mr, line(x.length, body.mr_ucl), line(x.length, body.mr_bar)], $("spc-mr"));
}

function renderViolations(body) {
  const rows = body.violations.slice(-100).reverse().map((v) => el("tr", {},
    el("td", {}, plantTime(v.t)), el("td", { class: "num" }, show(body.name, body.v[v.i])),
    el("td", {}, ...v.rules.map((r) => el("span", { class: "badge bad rule", title: RULES[r] || r }, r))),
    el("td", { class: "small" }, v.rules.map((r) => RULES[r] || r).join("; "))));
  $("spc-violations").tBodies[0].replaceChildren(...rows);
}

export async function refreshSpc() {
  renderSpcPicker();
  const tag = $("spc-tag").value;
  if (!tag) return;
  const body = await getJSON(`api/spc?tag=${encodeURIComponent(tag)}&minutes=${$("spc-minutes").value}`);
  $("spc-history").href = `#history?tags=${encodeURIComponent(tag)}&window=${Number($("spc-minutes").value) * 60000}`;
  const centre = body.centre != null ? `centre ${show(tag, body.centre)}, σ ${show(tag, body.sigma)}` : "no centre line (spec limits only): zone rules need mean and σ";
  $("spc-note").textContent = `${body.t.length} points, individuals chart; ${centre}; ${body.violations.length} rule violations.`;
  drawMain(body);
  drawMr(body);
  renderViolations(body);
}

export function initSpc() {
  $("spc-tag").addEventListener("change", () => refreshSpc());
  $("spc-minutes").addEventListener("change", () => refreshSpc());
  window.addEventListener("resize", () => { chart?.setSize({ width: width(), height: 300 }); mrChart?.setSize({ width: width(), height: 140 }); });
}
