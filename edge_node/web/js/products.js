// A product's whole story: find it by ID (or from a defect or an alarm), then its recipe, its
// time in each equipment with every parameter as a chart, the values measured, its defects
// and label result, and the alarms raised meanwhile.
import { $, duration, el, getJSON, getOptional } from "./api.js";
import { label, plantTime, show, timeAxis, tzDate, unitOf } from "./meta.js";
import { toMs } from "./alarms.js";

const charts = [];
let shown = "";

export function productRoute(rest) {
  // "#products/P-1", or "#products?at=<ms>&source=<series>" from an alarm.
  if (rest.startsWith("/")) return { id: decodeURIComponent(rest.slice(1)) };
  const params = new URLSearchParams(rest.replace(/^\?/, ""));
  return params.get("at") ? { at: params.get("at"), source: params.get("source") } : {};
}

async function resolve(route) {
  if (route.id) return route.id;
  if (!route.at) return "";
  const found = await getJSON(`api/products?at=${route.at}&source=${encodeURIComponent(route.source || "")}`);
  if (!found.length) { $("product-story").replaceChildren(el("p", { class: "muted" }, "No product was in process then.")); return ""; }
  history.replaceState(null, "", `#products/${encodeURIComponent(found[0].id)}`);
  return found[0].id;
}

function miniChart(p, start, end) {
  const holder = el("div", { class: "mini" }, el("div", { class: "mini-title" }, label(p.name), unitOf(p.name) ? el("small", { class: "muted" }, ` ${unitOf(p.name)}`) : null));
  const enumerated = Object.keys(p.enum || {}).length > 0;
  if (p.kind !== "num" || enumerated || p.v.every((v) => v == null)) {
    holder.append(el("p", { class: "small" }, [...new Set(p.v.map((v) => show(p.name, v)))].join(" → ")));
    return holder;
  }
  queueMicrotask(() => {
    const w = Math.max(240, holder.clientWidth - 8);
    charts.push(new uPlot({
      width: w, height: 110, tzDate, legend: { show: false }, cursor: { show: true },
      scales: { x: { time: true, min: start / 1000, max: end / 1000 } },
      axes: [{ ...timeAxis(), size: 24, font: "10px system-ui" }, { size: 48, font: "10px system-ui" }],
      series: [{}, { stroke: "#1f77b4", width: 1.5 }],
    }, [p.t.map((t) => t / 1000), p.v], holder));
  });
  return holder;
}

function equipmentSection(e) {
  const measured = e.values.filter((v) => !/product_id$/.test(v.name));
  return el("section", { class: "card stay", "data-device": e.device },
    el("h3", {}, el("span", {}, e.device.split("/")[1], el("small", { class: "muted" }, ` · ${e.device.split("/")[0]}`)),
      el("span", { class: "badge" }, `${duration(e.duration_s)}${e.open ? ", still there" : ""}`)),
    el("p", { class: "muted small" }, `${plantTime(e.start)} – ${e.open ? "now" : plantTime(e.end)}`),
    el("details", { open: true }, el("summary", {}, "Values when it arrived"),
      el("dl", { class: "facts" }, ...measured.flatMap((v) => [el("dt", {}, label(v.name)),
        el("dd", { "data-series": v.name }, show(v.name, v.value), unitOf(v.name) && typeof v.value === "number" && !v.text ? ` ${unitOf(v.name)}` : "")]))),
    el("div", { class: "minis" }, ...e.parameters.filter((p) => !/product_id$/.test(p.name)).map((p) => miniChart(p, e.start, e.end))));
}

function defectList(defects) {
  if (!defects.length) return el("p", { class: "ok-text" }, "No defect recorded.");
  return el("ul", { class: "defects" }, ...defects.map((d) => el("li", {},
    el("strong", { class: "bad-text" }, "Defect: "), `${label(d.series || "")} ${show(d.series || "", d.value)}`,
    d.limit != null ? ` (limit ${d.limit})` : "", " · label ",
    el("span", { class: `badge ${d.label_ok ? "ok" : "bad"}` }, d.label_status || (d.label_ok ? "printed" : "not printed")),
    ` · ${plantTime(toMs(d.ts))}`)));
}

function render(story) {
  for (const c of charts.splice(0)) c.destroy();
  const recipe = story.recipe;
  const head = el("div", { class: "story-head card" },
    el("h3", {}, el("span", { id: "product-id" }, story.id), story.defects.length ? el("span", { class: "badge bad" }, "defect") : el("span", { class: "badge ok" }, "no defect recorded")),
    el("dl", { class: "facts" },
      el("dt", {}, "Recipe"), el("dd", { id: "product-recipe" }, recipe ? `${recipe.name || recipe.id}` : "unknown", recipe ? el("small", { class: "muted" }, ` (${recipe.source})`) : ""),
      el("dt", {}, "On the line"), el("dd", {}, `${plantTime(story.start)} – ${plantTime(story.end)}`),
      el("dt", {}, "Route"), el("dd", {}, story.equipment.map((e) => e.device.split("/")[1]).join(" → "))),
    defectList(story.defects),
    story.alarms.length ? el("p", { class: "small" }, `Alarms meanwhile: `, ...story.alarms.map((a) => el("span", { class: "badge warn" }, `${label(a.source)}: ${a.rule}`))) : null);
  $("product-story").replaceChildren(head, ...story.equipment.map(equipmentSection));
}

export async function showProduct(route) {
  const id = await resolve(route);
  if (!id || id === shown) return;
  $("product-q").value = id;
  const story = await getOptional(`api/products/${encodeURIComponent(id)}`);
  if (!story) { $("product-story").replaceChildren(el("p", { class: "muted" }, `No equipment reported ${id} in the last 24 h.`)); shown = ""; return; }
  shown = id;
  render(story);
}

export async function refreshProducts() {
  const list = await getJSON("api/products?hours=24");
  const rows = list.slice(0, 50).map((p) => el("tr", {},
    el("td", {}, el("a", { href: `#products/${encodeURIComponent(p.id)}` }, p.id)),
    el("td", {}, plantTime(p.first)), el("td", { class: "small" }, p.equipment.map((e) => e.split("/")[1]).join(", ")),
    el("td", {}, el("span", { class: `badge ${p.defect ? "bad" : "ok"}` }, p.defect ? "defect" : "no defect"))));
  $("product-list").tBodies[0].replaceChildren(...rows);
}

export function forgetShown() { shown = ""; }

export function initProducts() {
  $("product-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("product-q").value.trim();
    if (id) { shown = ""; location.hash = `#products/${encodeURIComponent(id)}`; }
  });
}
