// Line overview: one card per equipment with its state, current product and key values
// placed against their control (lcl..ucl) and specification (lsl..usl) limits.
import { $, ago, el, formatValue, getJSON, getOptional } from "./api.js";

const STATE_TAG = /^(state|status|running|mode|run)$/i;
const PRODUCT_TAG = /product/i;
export const limitsBySeries = new Map();

export async function refreshLimits() {
  // What monitoring applies (master data, else the config's fallback); else master data alone.
  const limits = (await getOptional("api/limits")) ?? (await getOptional("api/master/limits"));
  limitsBySeries.clear();
  for (const l of limits || []) limitsBySeries.set(l.series, l);
}

// Equipment from master data when present (tags name their equipment), else one per device.
async function equipmentOf(latest) {
  const [equipment, tags] = await Promise.all([getOptional("api/master/equipment"), getOptional("api/master/tags")]);
  const names = new Map((equipment || []).map((e) => [e.id, e.name || e.id]));
  const owner = new Map((tags || []).filter((t) => t.equipment_id).map((t) => [`${t.gateway}/${t.device}/${t.tag}`, t]));
  const groups = new Map();
  for (const x of latest) {
    const info = owner.get(x.name);
    const [gateway, device] = x.name.split("/");
    const key = info ? names.get(info.equipment_id) || info.equipment_id : `${device} (${gateway})`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({ ...x, unit: info?.unit, description: info?.description });
  }
  return groups;
}

function level(value, l) {
  if (!l || typeof value !== "number") return "";
  if ((l.lsl != null && value < l.lsl) || (l.usl != null && value > l.usl)) return "bad";
  if ((l.lcl != null && value < l.lcl) || (l.ucl != null && value > l.ucl)) return "warn";
  return "ok";
}

// A horizontal gauge: spec range as the track, control range shaded, the value as a marker.
function limitBar(value, l) {
  const lo = l.lsl ?? l.lcl, hi = l.usl ?? l.ucl;
  if (lo == null || hi == null || hi <= lo || typeof value !== "number") return null;
  const pad = (hi - lo) * 0.15, min = lo - pad, span = hi - lo + 2 * pad;
  const pos = (x) => `${Math.min(100, Math.max(0, ((x - min) / span) * 100)).toFixed(1)}%`;
  const bar = el("div", { class: "limit-bar", title: limitText(l) });
  bar.append(el("span", { class: "spec", style: `left:${pos(lo)};right:calc(100% - ${pos(hi)})` }));
  if (l.lcl != null && l.ucl != null) bar.append(el("span", { class: "control", style: `left:${pos(l.lcl)};right:calc(100% - ${pos(l.ucl)})` }));
  bar.append(el("span", { class: `marker ${level(value, l)}`, style: `left:${pos(value)}` }));
  return bar;
}

function limitText(l) {
  const parts = [];
  if (l.lsl != null || l.usl != null) parts.push(`spec ${formatValue(l.lsl)}…${formatValue(l.usl)}`);
  if (l.lcl != null || l.ucl != null) parts.push(`control ${formatValue(l.lcl)}…${formatValue(l.ucl)}`);
  return parts.join(", ");
}

function valueRow(x) {
  const l = limitsBySeries.get(x.name);
  const tag = x.name.split("/").slice(2).join("/");
  const cls = x.quality !== "good" ? x.quality : level(x.value, l);
  return el("div", { class: `value-row ${cls}`, "data-series": x.name },
    el("span", { class: "tag", title: x.description || x.name }, tag),
    el("span", { class: "num" }, formatValue(x.value), x.unit ? el("small", {}, ` ${x.unit}`) : null),
    l ? limitBar(x.value, l) : el("span", { class: "muted small" }, x.quality !== "good" ? x.reason || x.quality : ""));
}

function equipmentCard(name, values) {
  const state = values.find((x) => STATE_TAG.test(x.name.split("/").pop()));
  const product = values.find((x) => PRODUCT_TAG.test(x.name.split("/").pop()));
  const keys = values.filter((x) => x !== state && x !== product && typeof x.value !== "string");
  const newest = Math.max(...values.map((x) => x.t));
  const running = state && (state.value === true || /^(run|running|on|auto|1)$/i.test(String(state.value)));
  const badge = state ? el("span", { class: `badge ${running ? "ok" : "warn"}` }, typeof state.value === "boolean" ? (state.value ? "running" : "stopped") : String(state.value)) : null;
  return el("article", { class: "card equipment" },
    el("h3", {}, name, badge),
    product ? el("p", { class: "product" }, "Product ", el("strong", {}, formatValue(product.value))) : null,
    ...keys.map(valueRow),
    el("p", { class: "muted small" }, `updated ${ago(newest)}`));
}

// The line at a glance: the product being made and how many values are off their limits.
function summary(latest) {
  const product = latest.find((x) => PRODUCT_TAG.test(x.name.split("/").pop()));
  const off = latest.filter((x) => level(x.value, limitsBySeries.get(x.name)) === "bad").length;
  const watch = latest.filter((x) => level(x.value, limitsBySeries.get(x.name)) === "warn").length;
  return [
    el("div", {}, el("span", { class: "muted" }, "Current product "), el("strong", { id: "current-product" }, product ? formatValue(product.value) : "—")),
    el("div", {}, el("span", { class: `badge ${off ? "bad" : "ok"}` }, `${off} out of spec`), " ",
      el("span", { class: `badge ${watch ? "warn" : "ok"}` }, `${watch} out of control`)),
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
