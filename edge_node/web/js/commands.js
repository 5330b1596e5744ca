// Setpoints and recipes that cannot be fat-fingered (engineers; the edge and the gateway check
// again): a writable tag chosen from a list with its current value, unit and limits; a value
// outside the limits or of the wrong type cannot be sent; a confirmation step; the result
// (done with the read-back value, or the reason) in place and in the audit list below.
import { $, el, getJSON, getOptional, postJSON } from "./api.js";
import { label, plantTime, show, tags, unitOf } from "./meta.js";
import { toMs } from "./alarms.js";

let latest = new Map();
let recipes = [];
let pending = null; // {gateway, writes, text} awaiting confirmation

const writable = () => [...tags.values()].filter((t) => t.writable).sort((a, b) => a.name.localeCompare(b.name));
const current = (name) => latest.get(name);

function valueInput(t) {
  if (t.kind === "bool") {
    return el("select", { id: "sp-value" }, el("option", { value: "true" }, "on"), el("option", { value: "false" }, "off"));
  }
  if (Object.keys(t.enum || {}).length) {
    return el("select", { id: "sp-value" }, ...Object.entries(t.enum).map(([v, name]) => el("option", { value: v }, `${name} (${v})`)));
  }
  if (t.kind === "str") return el("input", { id: "sp-value", maxlength: 64 });
  return el("input", { id: "sp-value", type: "number", inputmode: "decimal", min: t.min ?? undefined, max: t.max ?? undefined,
    step: t.type === "int" ? 1 : "any", required: true, "aria-describedby": "sp-problem" });
}

// The value to send, or the reason it must not be sent.
function parse(t, text) {
  if (t.kind === "bool") return { value: text === "true" };
  if (t.kind === "str") return text ? { value: text } : { problem: "Give a value." };
  if (text.trim() === "") return { problem: "Give a value." };
  const value = Number(text);
  if (!Number.isFinite(value)) return { problem: `${text} is not a number.` };
  if (t.type === "int" && !Number.isInteger(value)) return { problem: `${label(t.name)} takes whole numbers only.` };
  if (t.min != null && value < t.min) return { problem: `${value} is below the minimum ${t.min}${t.unit ? ` ${t.unit}` : ""}.` };
  if (t.max != null && value > t.max) return { problem: `${value} is above the maximum ${t.max}${t.unit ? ` ${t.unit}` : ""}.` };
  return { value };
}

function selected() {
  return tags.get($("sp-tag").value);
}

function renderFacts() {
  const t = selected();
  if (!t) return;
  const now = current(t.name);
  const limits = t.min != null || t.max != null ? `${t.min ?? "…"} to ${t.max ?? "…"}${t.unit ? ` ${t.unit}` : ""}` : "none given";
  $("sp-facts").replaceChildren(
    el("dt", {}, "Now"), el("dd", { id: "sp-now", class: now?.stale ? "stale" : "" }, now ? `${show(t.name, now.value)}${t.unit && typeof now.value === "number" && !t.enum?.[String(now.value)] ? ` ${t.unit}` : ""}${now.stale ? " (not current)" : ""}` : "no reading yet"),
    el("dt", {}, "Limits"), el("dd", { id: "sp-limits" }, limits),
    el("dt", {}, "Device"), el("dd", {}, `${t.device} on ${t.gateway}`));
}

function onTagChange() {
  const t = selected();
  if (!t) return;
  $("sp-input").replaceChildren(valueInput(t), t.unit ? el("span", { class: "unit" }, ` ${t.unit}`) : "");
  $("sp-value").addEventListener("input", validate);
  $("sp-confirm").hidden = true;
  renderFacts();
  validate();
}

function validate() {
  const t = selected();
  const { problem } = t ? parse(t, $("sp-value").value) : { problem: "Choose a setpoint." };
  const empty = t && $("sp-value").value === "";
  $("sp-problem").textContent = empty ? "" : problem || "";
  $("sp-review").disabled = Boolean(problem);
  $("sp-confirm").hidden = true;
  return !problem;
}

function review(event) {
  event.preventDefault();
  const t = selected();
  const { value, problem } = parse(t, $("sp-value").value);
  if (problem) return;
  const now = current(t.name);
  pending = { gateway: t.gateway, writes: [{ device: t.device, tag: t.tag, value }] };
  $("sp-confirm-text").textContent = `Write ${show(t.name, value)}${t.unit && typeof value === "number" ? ` ${t.unit}` : ""} to ${label(t.name)} on ${t.device}` +
    ` (now ${now ? show(t.name, now.value) : "unknown"})?`;
  $("sp-confirm").hidden = false;
  $("sp-send").focus();
}

async function send(resultId, confirmId) {
  if (!pending) return;
  const command = pending;
  pending = null;
  $(confirmId).hidden = true;
  const result = $(resultId);
  result.className = ""; result.textContent = "Sending…";
  try {
    const outcome = await postJSON("api/commands", command);
    result.className = outcome.ok ? "ok" : "bad";
    result.textContent = describe(outcome);
  } catch (error) {
    result.className = "bad";
    result.textContent = `Refused: ${error.detail || error.message}`;
  }
  refreshCommandLog().catch(() => {});
}

const writesText = (gateway, writes) => (writes || []).map((w) => `${label(`${gateway}/${w.device}/${w.tag}`)} = ${show(`${gateway}/${w.device}/${w.tag}`, w.value)}`).join(", ");

// "done: Setpoint = 25.0, read back 25.0", or the gateway's reason per write.
function describe(outcome) {
  const results = outcome.ack?.results || [];
  const readback = results.filter((r) => r.ok).map((r) => `${label(`${outcome.gateway}/${r.device}/${r.tag}`)} read back ${show(`${outcome.gateway}/${r.device}/${r.tag}`, r.readback)}`);
  const failed = results.filter((r) => r.ok === false).map((r) => `${r.device}/${r.tag}: ${r.error || "failed"}`);
  const what = writesText(outcome.gateway, outcome.writes);
  if (outcome.ok) return `Done: ${what}${readback.length ? `; ${readback.join(", ")}` : ""}.`;
  return `${outcome.status}: ${outcome.detail || failed.join("; ")} — ${what}`;
}

export async function refreshCommandLog() {
  const rows = (await getOptional("api/commands?limit=30")) || [];
  $("cmd-log").tBodies[0].replaceChildren(...rows.map((c) => {
    const back = (c.ack?.results || []).filter((r) => r.ok).map((r) => show(`${c.gateway}/${r.device}/${r.tag}`, r.readback)).join(", ");
    return el("tr", { class: c.status === "done" ? "" : "bad" },
      el("td", {}, plantTime(toMs(c.issued_at))), el("td", {}, c.issued_by), el("td", {}, c.gateway),
      el("td", {}, writesText(c.gateway, c.writes)), el("td", {}, c.status || "sent"),
      el("td", { class: "small" }, c.detail || (back ? `read back ${back}` : "")));
  }));
}

// Recipes from master data: each parameter written to the writable tag of the same name.
function recipeWrites(recipe) {
  return Object.entries(recipe.parameters || {}).map(([name, p]) => {
    const t = writable().find((w) => w.tag === name);
    return { name, p, t, check: t ? parse(t, String(p.value ?? "")) : { problem: "no writable tag of this name" } };
  });
}

function applyRecipe() {
  const recipe = recipes.find((r) => r.id === $("cmd-recipe").value);
  $("recipe-confirm").hidden = true;
  $("recipe-writes").hidden = !recipe;
  if (!recipe) { $("recipe-writes").tBodies[0].replaceChildren(); $("recipe-review").disabled = true; return; }
  const rows = recipeWrites(recipe);
  $("recipe-writes").tBodies[0].replaceChildren(...rows.map(({ name, p, t, check }) => el("tr", { class: check.problem ? "bad" : "" },
    el("td", {}, t ? label(t.name) : name), el("td", {}, t && current(t.name) ? show(t.name, current(t.name).value) : "—"),
    el("td", {}, `${p.value ?? "—"}${p.unit ? ` ${p.unit}` : ""}`, check.problem ? el("small", {}, ` (${check.problem})`) : ""))));
  $("recipe-review").disabled = rows.length === 0 || rows.some((r) => r.check.problem) || new Set(rows.map((r) => r.t.gateway)).size !== 1;
}

function reviewRecipe(event) {
  event.preventDefault();
  const recipe = recipes.find((r) => r.id === $("cmd-recipe").value);
  const rows = recipeWrites(recipe);
  pending = { gateway: rows[0].t.gateway, writes: rows.map((r) => ({ device: r.t.device, tag: r.t.tag, value: r.check.value })) };
  $("recipe-confirm-text").textContent = `Apply recipe ${recipe.name || recipe.id}: ${writesText(pending.gateway, pending.writes)}?`;
  $("recipe-confirm").hidden = false;
}

export async function refreshSetpoints() {
  const values = await getJSON("api/latest");
  latest = new Map(values.map((v) => [v.name, v]));
  const options = writable();
  const select = $("sp-tag");
  if (options.map((t) => t.name).join() !== Array.from(select.options, (o) => o.value).join()) {
    const chosen = select.value;
    select.replaceChildren(...options.map((t) => el("option", { value: t.name }, `${label(t.name)} · ${t.device}${t.unit ? ` [${t.unit}]` : ""}`)));
    if (options.some((t) => t.name === chosen)) select.value = chosen;
    onTagChange();
  } else renderFacts();
}

async function loadRecipes() {
  recipes = (await getOptional("api/master/recipes")) || [];
  $("cmd-recipe").append(...recipes.map((r) => el("option", { value: r.id }, r.name || r.id)));
  $("recipe-note").textContent = recipes.length ? "" : "No recipes in master data yet: they come from the central cloud's engineering system. A recipe number tag can still be set above, by name.";
}

export function initCommands() {
  $("sp-tag").addEventListener("change", onTagChange);
  $("setpoint-form").addEventListener("submit", review);
  $("sp-cancel").addEventListener("click", () => { pending = null; $("sp-confirm").hidden = true; });
  $("sp-send").addEventListener("click", () => send("cmd-result", "sp-confirm"));
  $("cmd-recipe").addEventListener("change", applyRecipe);
  $("recipe-form").addEventListener("submit", reviewRecipe);
  $("recipe-cancel").addEventListener("click", () => { pending = null; $("recipe-confirm").hidden = true; });
  $("recipe-send").addEventListener("click", () => send("recipe-result", "recipe-confirm"));
  $("recipe-writes").hidden = true;
  loadRecipes().catch(() => {});
}
