// Line overview: one card per equipment with its state, current product and its values,
// each with its unit, placed against its control (lcl..ucl) and specification (lsl..usl)
// limits; a value that is no longer current is greyed with its age and the reason.
import { $, ago, el, getJSON, getOptional } from "./api.js";
import { label, show, tags, unitOf } from "./meta.js";

const STATE_TAG = /^(state|status|mode)$/i;
const PRODUCT_TAG = /(^|_)product_id$/i;
export const limitsBySeries = new Map();

export async function refreshLimits() {
  // What monitoring applies (master data, else the config's fallback); else master data alone.
  const limits = (await getOptional("api/limits")) ?? (await getOptional("api/master/limits"));
  limitsBySeries.clear();
  for (const l of limits || []) limitsBySeries.set(l.series, l);
}

// Equipment from master data when present (tags name their equipment), else one per device.
async function equipmentOf(latest) {
  const equipment = await getOptional("api/master/equipment");
  const names = new Map((equipment || []).map((e) => [e.id, e.name || e.id]));
  const groups = new Map();
  for (const x of latest) {
    const owner = tags.get(x.name)?.equipment_id;
    const [gateway, device] = x.name.split("/");
    const key = owner ? names.get(owner) || owner : `${device} · ${gateway}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(x);
  }
  return groups;
}

function level(value, given) {
  if (!given || typeof value !== "number") return "";
  const l = { ...given };
  if (l.mean != null && l.sigma != null) { l.lcl ??= l.mean - 3 * l.sigma; l.ucl ??= l.mean + 3 * l.sigma; }
  if ((l.lsl != null && value < l.lsl) || (l.usl != null && value > l.usl)) return "bad";
  if ((l.lcl != null && value < l.lcl) || (l.ucl != null && value > l.ucl)) return "warn";
  return "ok";
}

// A horizontal gauge: spec range as the track, control range shaded, the value as a marker.
// One-sided limits (ΔE has only an upper spec limit) start the track at zero or the mean.
function limitBar(value, given) {
  // Control limits from the centre line when only mean and sigma are given (mean ± 3σ).
  const l = { ...given };
  if (l.mean != null && l.sigma != null) { l.lcl ??= l.mean - 3 * l.sigma; l.ucl ??= l.mean + 3 * l.sigma; }
  let lo = l.lsl ?? l.lcl, hi = l.usl ?? l.ucl;
  if (lo == null && hi != null) lo = Math.min(0, value, l.mean ?? 0);
  if (hi == null && lo != null) hi = Math.max(lo + 1, value, (l.mean ?? lo) * 2 - lo);
  if (lo == null || hi == null || hi <= lo || typeof value !== "number") return null;
  const pad = (hi - lo) * 0.15, min = lo - pad, span = hi - lo + 2 * pad;
  const pos = (x) => `${Math.min(100, Math.max(0, ((x - min) / span) * 100)).toFixed(1)}%`;
  const bar = el("div", { class: "limit-bar", title: limitText(l), role: "img", "aria-label": limitText(l) });
  bar.append(el("span", { class: "spec", style: `left:${pos(l.lsl ?? lo - pad)};right:calc(100% - ${pos(l.usl ?? hi + pad)})` }));
  if (l.lcl != null && l.ucl != null) bar.append(el("span", { class: "control", style: `left:${pos(l.lcl)};right:calc(100% - ${pos(l.ucl)})` }));
  bar.append(el("span", { class: `marker ${level(value, l)}`, style: `left:${pos(value)}` }));
  return bar;
}

function limitText(l) {
  const parts = [];
  const n = (x) => (x == null ? "…" : String(+x.toFixed(3)));
  if (l.lsl != null || l.usl != null) parts.push(`spec ${n(l.lsl)} to ${n(l.usl)}`);
  if (l.lcl != null || l.ucl != null) parts.push(`control ${n(l.lcl)} to ${n(l.ucl)}`);
  return parts.join(", ");
}

function valueRow(x) {
  const l = limitsBySeries.get(x.name);
  const stale = x.stale || x.quality !== "good";
  const cls = stale ? `stale ${x.quality}` : level(x.value, l);
  const unit = unitOf(x.name);
  const note = stale ? el("span", { class: "why small" }, `${x.stale ? "stale" : x.quality} · ${ago(x.t)} · ${x.stale_reason || x.reason}`) : null;
  const numeric = typeof x.value === "number" && !tags.get(x.name)?.enum?.[String(x.value)];
  return el("div", { class: `value-row ${cls}`, "data-series": x.name, title: tags.get(x.name)?.description || x.name },
    el("span", { class: "tag" }, label(x.name)),
    el("span", { class: "num" }, show(x.name, x.value), unit && numeric ? el("small", {}, ` ${unit}`) : null),
    l && !stale ? limitBar(x.value, l) : el("span"),
    note);
}

function stateBadge(state) {
  if (!state) return null;
  const text = show(state.name, state.value);
  const tone = state.stale ? "" : /process|run|auto/i.test(text) ? "ok" : /stop|fault|alarm/i.test(text) ? "bad" : "warn";
  return el("span", { class: `badge ${tone}` }, text);
}

function equipmentCard(name, values) {
  const state = values.find((x) => STATE_TAG.test(x.name.split("/").pop()));
  const products = values.filter((x) => PRODUCT_TAG.test(x.name.split("/").pop()));
  const rest = values.filter((x) => x !== state && !products.includes(x));
  const newest = Math.max(...values.map((x) => x.t));
  const stale = values.every((x) => x.stale);
  return el("article", { class: `card equipment${stale ? " stale" : ""}` },
    el("h3", {}, el("span", {}, name), stateBadge(state)),
    ...products.map((p) => el("p", { class: "product" }, `${label(p.name)} `,
      p.value ? el("a", { href: `#products/${encodeURIComponent(p.value)}` }, String(p.value)) : "—")),
    ...rest.map(valueRow),
    el("p", { class: "muted small" }, stale ? `no current data · last ${ago(newest)}` : `updated ${ago(newest)}`));
}

// The line at a glance: the product being made and how many values are off their limits.
function summary(latest) {
  const fresh = latest.filter((x) => !x.stale && x.quality === "good");
  const product = latest.find((x) => /(^|\/)product_id$/.test(x.name));
  const off = fresh.filter((x) => level(x.value, limitsBySeries.get(x.name)) === "bad").length;
  const watch = fresh.filter((x) => level(x.value, limitsBySeries.get(x.name)) === "warn").length;
  const stale = latest.length - fresh.length;
  return [
    el("div", {}, el("span", { class: "muted" }, "Product in process "), el("strong", { id: "current-product" }, product?.value ? String(product.value) : "—")),
    el("div", { class: "badges" }, el("span", { class: `badge ${off ? "bad" : "ok"}` }, `${off} out of spec`),
      el("span", { class: `badge ${watch ? "warn" : "ok"}` }, `${watch} out of control`),
      el("span", { class: `badge ${stale ? "stale" : "ok"}`, id: "stale-count" }, `${stale} not current`)),
  ];
}

export async function refreshOverview() {
  const latest = await getJSON("api/latest");
  if (!latest.length) return;
  $("line-summary").replaceChildren(...summary(latest));
  const groups = await equipmentOf(latest);
  const cards = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, values]) => equipmentCard(name, values));
  $("equipment").replaceChildren(...cards);
}
