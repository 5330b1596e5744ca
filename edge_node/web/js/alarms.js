// Alarms: active and recent, acknowledge (operators and engineers), pushed live over SSE.
import { $, clock, el, formatValue, getOptional, postJSON, toast } from "./api.js";

const alarms = new Map(); // id -> alarm, as the server last described it
let stream = null;
let canAck = false;
let available = true;

// Alarm times are ns on the edge (wire convention); some responses may already be ms.
export const toMs = (t) => (t == null ? null : t > 1e15 ? Math.floor(t / 1e6) : t);

function row(a, active) {
  const cells = [
    el("td", {}, clock(toMs(a.raised_at))), el("td", {}, a.source), el("td", {}, a.rule),
    el("td", {}, a.message), el("td", { class: "num" }, formatValue(a.value)),
  ];
  const tone = a.cleared_at ? "" : a.acked_at ? "warn" : "bad";
  const state = el("td", {}, el("span", { class: `badge ${tone}` }, a.state));
  if (active) {
    const ack = canAck && !a.acked_at
      ? el("button", { class: "ack", "data-id": a.id, onclick: () => acknowledge(a.id) }, "Acknowledge")
      : el("span", { class: "muted small" }, a.acked_by ? `by ${a.acked_by}` : "");
    return el("tr", { class: `alarm ${a.severity || ""}`, "data-id": a.id }, ...cells, state, el("td", {}, ack));
  }
  return el("tr", { "data-id": a.id }, ...cells.slice(0, 4), el("td", {}, a.state),
    el("td", {}, a.acked_by ? `${a.acked_by}, ${clock(toMs(a.acked_at))}` : ""),
    el("td", {}, a.cleared_at ? clock(toMs(a.cleared_at)) : ""));
}

function render() {
  const all = [...alarms.values()].sort((a, b) => b.raised_at - a.raised_at);
  // Needing attention (ISA-18.2): present, or gone but not yet acknowledged.
  const active = all.filter((a) => (a.active ?? a.cleared_at == null) || !a.acked_at);
  $("alarm-active").tBodies[0].replaceChildren(...active.map((a) => row(a, true)));
  $("alarm-history").tBodies[0].replaceChildren(...all.slice(0, 200).map((a) => row(a, false)));
  const open = active.filter((a) => !a.acked_at).length;
  $("alarm-count").textContent = String(open);
  $("alarm-count").hidden = open === 0;
  $("alarm-note").textContent = available ? "" : "Alarms are not available on this edge node.";
}

async function acknowledge(id) {
  try {
    const alarm = await postJSON(`api/alarms/${id}/ack`);
    if (alarm && alarm.id !== undefined) alarms.set(alarm.id, alarm);
    render();
  } catch (error) {
    toast(`Acknowledge failed: ${error.message}`, "bad");
  }
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

// Server-sent events: the browser reconnects by itself; a full refresh resyncs after gaps.
function listen() {
  stream = new EventSource("api/alarms/stream");
  stream.addEventListener("alarm", (event) => {
    const change = JSON.parse(event.data);
    const alarm = change.alarm || change;
    alarms.set(alarm.id, alarm);
    render();
    if (change.kind === "raised") toast(`Alarm: ${alarm.message || alarm.rule} (${alarm.source})`, "bad");
  });
  stream.onopen = () => refreshAlarms().catch(() => {});
}

export function initAlarms(role) {
  canAck = role >= 2;
}
