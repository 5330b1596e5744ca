// Alarms the ISA-18.2 way: priorities, states in words, acknowledge and shelve (with a reason
// and an expiry), filters, the journal of who did what, and the alarm rate per 10 minutes
// against the standard's manageable rate. Changes are pushed live over SSE.
import { $, el, getOptional, postJSON, toast } from "./api.js";
import { label, plantTime, show } from "./meta.js";

const alarms = new Map(); // id -> alarm, as the server last described it
let stream = null;
let canAct = false;
let available = true;
let shelving = null; // the alarm the shelve dialog is for

// Alarm times are ns on the edge (wire convention); some responses may already be ms.
export const toMs = (t) => (t == null ? null : t > 1e15 ? Math.floor(t / 1e6) : t);
const tone = { 1: "bad", 2: "bad", 3: "warn", 4: "" };

function productLink(a) {
  return el("a", { class: "small", href: `#products?at=${toMs(a.raised_at)}&source=${encodeURIComponent(a.source)}` }, "product");
}

function actions(a) {
  if (!canAct) return el("span", { class: "muted small" }, a.acked_by ? `by ${a.acked_by}` : "");
  return el("span", { class: "actions" },
    a.acked_at ? el("span", { class: "muted small" }, `ack ${a.acked_by}`) : el("button", { class: "ack", "data-id": a.id, onclick: () => acknowledge(a.id) }, "Acknowledge"),
    el("button", { class: "shelve", "data-id": a.id, onclick: () => openShelve(a) }, "Shelve"));
}

function activeRow(a) {
  return el("tr", { class: `alarm p${a.priority}`, "data-id": a.id },
    el("td", {}, plantTime(toMs(a.raised_at))),
    el("td", {}, el("span", { class: `badge ${tone[a.priority] ?? ""}` }, a.priority_name)),
    el("td", { title: a.source }, label(a.source), " ", productLink(a)),
    el("td", {}, a.message, el("small", { class: "muted" }, ` ${a.rule}${a.count > 1 ? ` ×${a.count}` : ""}`)),
    el("td", { class: "num" }, show(a.source, a.value)),
    el("td", {}, el("span", { class: `state ${a.state}` }, a.state_label)),
    el("td", {}, actions(a)));
}

function shelvedRow(a) {
  const s = a.shelf;
  return el("tr", { "data-id": a.id },
    el("td", { title: a.source }, label(a.source)), el("td", {}, a.message),
    el("td", {}, s.shelved_by), el("td", {}, s.reason), el("td", {}, plantTime(toMs(s.expires_at))),
    el("td", {}, canAct ? el("button", { class: "unshelve", onclick: () => unshelve(a.id) }, "Unshelve") : ""));
}

function matches(a) {
  const p = $("alarm-priority").value, st = $("alarm-state").value, text = $("alarm-text").value.toLowerCase();
  if (p && String(a.priority) !== p) return false;
  if (st === "unacked" && a.acked_at) return false;
  if (st === "acked" && !a.acked_at) return false;
  return !text || `${a.source} ${label(a.source)} ${a.message} ${a.rule}`.toLowerCase().includes(text);
}

function render() {
  const all = [...alarms.values()].sort((a, b) => a.priority - b.priority || b.raised_at - a.raised_at);
  // Needing attention (ISA-18.2): present, or returned to normal but not yet acknowledged.
  const attention = all.filter((a) => !a.shelved && ((a.active ?? a.cleared_at == null) || !a.acked_at));
  const shown = attention.filter(matches);
  $("alarm-active").tBodies[0].replaceChildren(...shown.map(activeRow));
  $("alarm-none").hidden = shown.length > 0;
  const shelved = all.filter((a) => a.shelved && a.active);
  $("alarm-shelved").tBodies[0].replaceChildren(...shelved.map(shelvedRow));
  $("shelved-none").hidden = shelved.length > 0;
  $("alarm-shelved").hidden = shelved.length === 0;
  const open = attention.filter((a) => !a.acked_at).length;
  $("alarm-count").textContent = String(open);
  $("alarm-count").hidden = open === 0;
  $("alarm-note").textContent = available ? "" : "Alarms are not available on this edge node.";
}

async function act(path, body, what) {
  try {
    const alarm = await postJSON(path, body);
    if (alarm && alarm.id !== undefined) alarms.set(alarm.id, alarm);
    render();
    refreshJournal().catch(() => {});
  } catch (error) {
    toast(`${what} failed: ${error.message}`, "bad");
  }
}

const acknowledge = (id) => act(`api/alarms/${id}/ack`, null, "Acknowledge");
const unshelve = (id) => act(`api/alarms/${id}/unshelve`, null, "Unshelve");

function openShelve(a) {
  shelving = a;
  $("shelve-what").textContent = `${label(a.source)}: ${a.message}`;
  $("shelve-reason").value = "";
  $("shelve-dialog").showModal();
}

async function confirmShelve(event) {
  event.preventDefault();
  const minutes = Number($("shelve-minutes").value), reason = $("shelve-reason").value.trim();
  if (!reason) { $("shelve-reason").reportValidity(); return; }
  $("shelve-dialog").close();
  if (shelving) await act(`api/alarms/${shelving.id}/shelve`, { minutes, reason }, "Shelve");
}

function renderRate(rate) {
  if (!rate) return;
  const peak = Math.max(rate.flood + 2, ...rate.counts);
  const bars = rate.counts.map((c, i) => el("span", {
    class: `bar ${c > rate.flood ? "bad" : c > rate.manageable ? "warn" : ""}`,
    style: `height:${((c / peak) * 100).toFixed(1)}%`, title: `${plantTime(toMs(rate.start) + i * rate.window_s * 1000, false)}: ${c} alarms`,
  }));
  const guide = (n, text) => el("span", { class: "guide", style: `bottom:${((n / peak) * 100).toFixed(1)}%` }, text);
  $("alarm-rate").replaceChildren(
    el("div", { class: "bars" }, ...bars, guide(rate.manageable, `${rate.manageable}: max manageable`), guide(rate.flood, `${rate.flood}: flood`)),
    el("p", { class: "small" }, `Last 24 h: ${rate.average} alarms per 10 min on average, peak ${rate.peak}; `,
      `${rate.over_manageable} ten-minute periods above ${rate.manageable}, ${rate.flood_windows} in flood (over ${rate.flood}); in flood ${rate.in_flood_pct} % of the time. `,
      el("span", { class: "muted" }, "ANSI/ISA-18.2 and EEMUA 191: ~1 per 10 min is very likely acceptable, ~2 the most one operator can manage; more than 10 is a flood.")));
}

async function refreshJournal() {
  const journal = await getOptional("api/alarms/journal");
  const rows = (journal || []).slice(0, 100).map((e) => el("tr", {},
    el("td", {}, plantTime(toMs(e.ts))), el("td", {}, e.action), el("td", {}, e.by),
    el("td", { title: e.source }, `${label(e.source)} · ${e.rule}`),
    el("td", { class: "small" }, e.until ? `${e.detail} (until ${plantTime(toMs(e.until))})` : e.detail)));
  $("alarm-journal").tBodies[0].replaceChildren(...rows);
}

export async function refreshAlarms() {
  const since = Date.now() - 24 * 3600 * 1000;
  const [active, recent] = await Promise.all([getOptional("api/alarms?active=true"), getOptional(`api/alarms?since=${since}`)]);
  available = active !== null;
  alarms.clear();
  for (const a of [...(recent || []), ...(active || [])]) alarms.set(a.id, a);
  render();
  if (available && !stream) listen();
}

export async function refreshAlarmDetails() {
  if (!available) return;
  const [rate] = await Promise.all([getOptional("api/alarms/rate"), refreshJournal()]);
  renderRate(rate);
}

// Server-sent events: the browser reconnects by itself; a full refresh resyncs after gaps.
function listen() {
  stream = new EventSource("api/alarms/stream");
  stream.addEventListener("alarm", (event) => {
    const change = JSON.parse(event.data);
    // The stream carries the bare alarm: keep what the list said about priority and shelf.
    refreshAlarms().catch(() => {});
    if (change.kind === "raised") toast(`Alarm: ${change.alarm.message || change.alarm.rule} (${label(change.alarm.source)})`, "bad");
  });
  stream.onopen = () => refreshAlarms().catch(() => {});
}

export function initAlarms(role) {
  canAct = role >= 2;
  for (const id of ["alarm-priority", "alarm-state", "alarm-text"]) $(id).addEventListener("input", render);
  $("shelve-form").addEventListener("submit", confirmShelve);
  $("shelve-cancel").addEventListener("click", () => $("shelve-dialog").close());
}
