// Defect log: products whose measurement was defect-level, their recipe and the label result;
// one click to the product's whole story.
import { $, el, getOptional } from "./api.js";
import { label, plantTime, show } from "./meta.js";
import { toMs } from "./alarms.js";

const recipeName = (d) => d.recipe?.name || d.recipe?.id || d.recipe_id || "unknown";

export async function refreshDefects() {
  const since = Date.now() - 7 * 24 * 3600 * 1000;
  const defects = await getOptional(`api/defects?since=${since}`);
  $("defect-note").textContent = defects === null ? "The defect log is not available on this edge node." : defects.length ? "" : "No defects in the last 7 days.";
  const rows = (defects || []).map((d) => el("tr", {},
    el("td", {}, plantTime(toMs(d.ts ?? d.at ?? d.created_at))),
    el("td", {}, d.product_id ? el("a", { href: `#products/${encodeURIComponent(d.product_id)}` }, d.product_id) : "—"),
    el("td", {}, recipeName(d)), el("td", { title: d.series || "" }, label(d.series || "")),
    el("td", { class: "num" }, show(d.series || "", d.value), d.limit != null ? el("small", { class: "muted" }, ` > ${d.limit}`) : null),
    el("td", {}, el("span", { class: `badge ${d.label_ok ? "ok" : "bad"}` }, d.label_status ?? (d.label_ok ? "printed" : "not printed")))));
  $("defect-log").tBodies[0].replaceChildren(...rows);
}
