// Setpoints and recipes (engineers only; the server checks the role again): one command of
// one or more writes, sent through the edge to a gateway, which executes, reads back and acks.
import { $, clock, el, getOptional, postJSON } from "./api.js";
import { toMs } from "./alarms.js";

let recipes = [];

function writeRow(device = "", tag = "", value = "") {
  const input = (name, v, extra = {}) => el("input", { name, value: v, required: true, "aria-label": name, ...extra });
  return el("tr", {},
    el("td", {}, input("device", device)), el("td", {}, input("tag", tag)),
    el("td", {}, input("value", value, { inputmode: "decimal" })),
    el("td", {}, el("button", { type: "button", class: "link", onclick: (e) => e.target.closest("tr").remove() }, "remove")));
}

// "21.5" -> 21.5, "true" -> true, anything else stays text (a recipe name, a mode).
function parseValue(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  return t !== "" && !Number.isNaN(Number(t)) ? Number(t) : t;
}

export function setGateways(gateways) {
  const select = $("cmd-gateway");
  const current = select.value;
  const names = gateways.map((g) => g.gateway);
  if (names.join() === Array.from(select.options, (o) => o.value).join()) return;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(current)) select.value = current;
}

async function loadRecipes() {
  recipes = (await getOptional("api/master/recipes")) || [];
  $("cmd-recipe").append(...recipes.map((r) => el("option", { value: r.id }, r.name || r.id)));
}

function applyRecipe() {
  const recipe = recipes.find((r) => r.id === $("cmd-recipe").value);
  const body = $("cmd-writes").tBodies[0];
  if (!recipe) { body.replaceChildren(writeRow()); return; }
  const device = body.querySelector("input[name=device]")?.value || "";
  body.replaceChildren(...Object.entries(recipe.parameters || {}).map(([name, p]) => writeRow(device, name, String(p.value ?? ""))));
}

async function send(event) {
  event.preventDefault();
  const writes = Array.from($("cmd-writes").tBodies[0].rows, (r) => ({
    device: r.querySelector("[name=device]").value.trim(), tag: r.querySelector("[name=tag]").value.trim(),
    value: parseValue(r.querySelector("[name=value]").value),
  }));
  const result = $("cmd-result");
  result.className = ""; result.textContent = "Sending…";
  try {
    const outcome = await postJSON("api/commands", { gateway: $("cmd-gateway").value, writes });
    result.className = outcome.ok ? "ok" : "bad";
    result.textContent = describe(outcome);
    refreshCommandLog().catch(() => {});
  } catch (error) {
    result.className = "bad";
    result.textContent = error.message;
  }
}

const writesText = (writes) => (writes || []).map((w) => `${w.device}/${w.tag} = ${w.value}`).join(", ");

// "done: bath/sp = 21.5 (read back)", or the gateway's reason per write.
function describe(outcome) {
  const results = outcome.ack?.results || [];
  const failed = results.filter((r) => r.ok === false).map((r) => `${r.device}/${r.tag}: ${r.detail || "failed"}`);
  const what = writesText(outcome.writes);
  if (outcome.ok) return `done: ${what} executed and read back`;
  return `${outcome.status}${outcome.detail ? `: ${outcome.detail}` : ""}${failed.length ? ` (${failed.join("; ")})` : ""} — ${what}`;
}

export async function refreshCommandLog() {
  const rows = (await getOptional("api/commands?limit=20")) || [];
  $("cmd-log").tBodies[0].replaceChildren(...rows.map((c) => el("tr", { class: c.status === "done" ? "" : "bad" },
    el("td", {}, clock(toMs(c.issued_at))), el("td", {}, c.issued_by), el("td", {}, c.gateway),
    el("td", {}, writesText(c.writes)), el("td", {}, c.status || "sent"), el("td", { class: "small" }, c.detail || ""))));
}

export function initCommands() {
  $("cmd-writes").tBodies[0].replaceChildren(writeRow());
  $("cmd-add").addEventListener("click", () => $("cmd-writes").tBodies[0].append(writeRow()));
  $("cmd-recipe").addEventListener("change", applyRecipe);
  $("command-form").addEventListener("submit", send);
  loadRecipes().catch(() => {});
}
