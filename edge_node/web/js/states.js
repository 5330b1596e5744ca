// Booleans and enumerations as state bands (one coloured segment per state over time), and
// strings as change events (a row when the value changes, not one per reading).
import { el } from "./api.js";
import { label, plantTime, show } from "./meta.js";

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

function colour(value) {
  if (value === true) return "#1b873f";
  if (value === false || value === null || value === undefined) return "#c9d1d9";
  const n = typeof value === "number" ? value : [...String(value)].reduce((a, c) => a + c.charCodeAt(0), 0);
  return PALETTE[Math.abs(Math.round(n)) % PALETTE.length];
}

// Points of a series as [t, value]: raw and "last" as they are; buckets by their maximum.
function points(s) {
  if (s.mode === "minmax") return s.t.map((t, i) => [t, s.max[i]]);
  return s.t.map((t, i) => [t, s.v[i]]);
}

// Runs of one value: [[from, to, value], ...] within [start, end).
export function runs(pts, start, end) {
  const out = [];
  for (let i = 0; i < pts.length; i++) {
    const [t, v] = pts[i];
    const last = out.at(-1);
    if (last && last[2] === v) continue;
    if (last) last[1] = t;
    out.push([Math.max(t, start), end, v]);
  }
  return out;
}

export function bandRows(series, start, end) {
  return series.map((s) => {
    const span = end - start;
    const segments = runs(points(s), start, end).map(([from, to, v]) => el("span", {
      class: "seg", "data-value": show(s.name, v),
      style: `left:${(((from - start) / span) * 100).toFixed(2)}%;width:${Math.max(0.2, ((to - from) / span) * 100).toFixed(2)}%;background:${colour(v)}`,
      title: `${show(s.name, v)}: ${plantTime(from)} – ${plantTime(to)}`,
    }));
    const names = [...new Set(runs(points(s), start, end).map((r) => r[2]))];
    const key = names.map((v) => el("span", { class: "key" }, el("i", { style: `background:${colour(v)}` }), show(s.name, v)));
    return el("div", { class: "band", "data-series": s.name },
      el("span", { class: "band-label" }, label(s.name)),
      el("div", { class: "band-track" }, ...segments),
      el("div", { class: "band-key small" }, ...key));
  });
}

export function changeEvents(series) {
  const items = [];
  for (const s of series) {
    let previous;
    s.t.forEach((t, i) => {
      const v = s.v ? s.v[i] : "";
      if (i > 0 && v === previous) return;
      previous = v;
      items.push([t, s.name, v]);
    });
  }
  if (!items.length) return "";
  items.sort((a, b) => b[0] - a[0]);
  const rows = items.slice(0, 50).map(([t, name, v]) =>
    el("tr", {}, el("td", {}, plantTime(t)), el("td", {}, label(name)), el("td", {}, String(v ?? "—"))));
  return el("div", {}, el("h3", { class: "sub" }, "Changes"),
    el("table", { class: "events" }, el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Tag"), el("th", {}, "New value"))), el("tbody", {}, ...rows)));
}
