// Gateways and connectors health: the gateways' retained status, and the edge's ingest counters.
import { $, ago, duration, el, getJSON } from "./api.js";
import { plantTime } from "./meta.js";

const STATE_CLASS = { up: "ok", degraded: "warn", starting: "warn", down: "bad" };

function connectorTable(connectors) {
  if (!connectors?.length) return null;
  const rows = connectors.map((c) => el("tr", { class: STATE_CLASS[c.state] || "" },
    el("td", {}, c.name), el("td", {}, c.type), el("td", {}, el("span", { class: `badge ${STATE_CLASS[c.state] || ""}` }, c.state)),
    el("td", { class: "num" }, c.latency_ms != null ? `${c.latency_ms.toFixed(1)} ms` : ""),
    el("td", { class: "num" }, `${c.errors || 0}/${c.polls || 0}`),
    el("td", { class: "small" }, c.last_error || (c.last_success ? ago(c.last_success / 1e6) : ""))));
  return el("table", { class: "connectors" },
    el("thead", {}, el("tr", {}, ...["Connector", "Type", "State", "Latency", "Errors/polls", "Last"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

function gatewayCard(g) {
  const s = g.status;
  if (!g.online) return offlineCard(g);
  const dropped = Object.entries(s.dropped || {}).filter(([, n]) => n > 0);
  // What this edge refused of the gateway's messages (e.g. seq_jump: seqs not issued yet).
  const refused = Object.entries(g.rejected || {}).filter(([, n]) => n > 0);
  const facts = [
    ["version", s.version || "?"],
    ["uptime", s.uptime_s ? duration(s.uptime_s) : "?"],
    ["buffer", `${s.buffer_depth || 0} readings${s.buffer_bytes ? `, ${(s.buffer_bytes / 1024).toFixed(0)} KiB` : ""}`],
    ["dropped", dropped.length ? dropped.map(([k, n]) => `${k} ${n}`).join(", ") : "none"],
    ["re-sent", s.resent || s.unconfirmed ? `${s.resent || 0} batches lost after the broker${s.unconfirmed ? `, ${s.unconfirmed} unconfirmed` : ""}` : "none"],
    ["refused", refused.length ? refused.map(([k, n]) => `${k.replaceAll("_", " ")} ${n}`).join(", ") : "none"],
    ["clock", s.clock_synced === false ? "not synchronised" : "synchronised"],
    ["last heard", g.last_heard ? `${ago(g.last_heard)} (${plantTime(g.last_heard)})` : ago(g.received_at)],
  ];
  const dl = el("dl");
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", { class: (k === "dropped" && dropped.length) || (k === "refused" && refused.length) || (k === "re-sent" && s.unconfirmed) ? "bad" : "" }, String(v)));
  const badge = el("span", { class: `badge ${g.online ? "ok" : "bad"}` }, g.online ? "online" : "offline");
  return el("article", { class: "card gateway", "data-gateway": g.gateway }, el("h3", {}, g.gateway, badge), dl, connectorTable(s.connectors));
}

// The broker sent the gateway's last will: say when the edge last heard from it, not the
// will's (connect-time) counters.
function offlineCard(g) {
  const heard = g.last_heard ? `${ago(g.last_heard)} (${plantTime(g.last_heard)})` : "never";
  const dl = el("dl", {}, el("dt", {}, "last heard"), el("dd", { class: "bad" }, heard),
    el("dt", {}, "offline since"), el("dd", {}, `${plantTime(g.received_at)}`),
    el("dt", {}, "version"), el("dd", {}, g.status.version || "?"));
  return el("article", { class: "card gateway offline", "data-gateway": g.gateway },
    el("h3", {}, g.gateway, el("span", { class: "badge bad" }, "offline")), dl,
    el("p", { class: "muted small" }, "Its values are shown as not current until it reports again."));
}

export async function refreshGateways() {
  const gateways = await getJSON("api/gateways");
  if (gateways.length) $("gateway-cards").replaceChildren(...gateways.map(gatewayCard));
  return gateways;
}

export async function refreshIngest() {
  const { ingest, store } = await getJSON("api/stats");
  const facts = [
    ["readings stored", ingest.readings_stored], ["duplicates ignored", ingest.readings_duplicate],
    ["batches", ingest.batches], ["rejected payloads", ingest.rejected_total],
    ["last commit", `${ingest.last_flush_ms} ms`], ...Object.entries(store).map(([k, v]) => [k.replaceAll("_", " "), v]),
  ];
  $("ingest").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}
