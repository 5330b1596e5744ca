// Defect log: products whose measurement was defect-level, the recipe, and the label result.
import { $, clock, el, formatValue, getOptional } from "./api.js";
import { toMs } from "./alarms.js";

export async function refreshDefects() {
  const since = Date.now() - 7 * 24 * 3600 * 1000;
  const defects = await getOptional(`api/defects?since=${since}`);
  $("defect-note").textContent = defects === null ? "The defect log is not available on this edge node." : defects.length ? "" : "No defects in the last 7 days.";
  const rows = (defects || []).map((d) => el("tr", {},
    el("td", {}, clock(toMs(d.ts ?? d.at ?? d.created_at))), el("td", {}, d.product_id ?? ""),
    el("td", {}, d.recipe_id ?? d.recipe?.id ?? ""), el("td", {}, d.series ?? d.measurement ?? ""),
    el("td", { class: "num" }, formatValue(d.value), d.limit != null ? el("small", { class: "muted" }, ` > ${formatValue(d.limit)}`) : null),
    el("td", {}, d.label_status ?? (d.label_ok === undefined ? "" : d.label_ok ? "printed" : "failed"))));
  $("defect-log").tBodies[0].replaceChildren(...rows);
}
