// The operators' page: who is logged in, which tab shows, and a refresh loop per visible tab.
import { $, ROLES, getJSON, postJSON, toast } from "./api.js";
import { initAlarms, refreshAlarms } from "./alarms.js";
import { initCommands, refreshCommandLog, setGateways } from "./commands.js";
import { refreshDefects } from "./defects.js";
import { refreshGateways, refreshIngest } from "./gateways.js";
import { initHistory, refreshChart, refreshTags } from "./history.js";
import { refreshLimits, refreshOverview } from "./overview.js";

const REFRESH_MS = 1500;
const PAGES = ["overview", "history", "alarms", "gateways", "defects", "commands"];
let role = 0;

function currentPage() {
  const name = location.hash.slice(1);
  const link = document.querySelector(`#tabs a[href="#${name}"]`);
  return PAGES.includes(name) && link && !link.hidden ? name : "overview";
}

function showPage() {
  const page = currentPage();
  for (const name of PAGES) if ($(name)) $(name).hidden = name !== page;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.getAttribute("href") === `#${page}`);
  tick(); // now, for the new tab; it also reschedules the loop
}

// Hide what this role may not use; the server refuses it anyway (403).
function applyRole() {
  for (const node of document.querySelectorAll("[data-role]")) {
    const allowed = role >= ROLES[node.dataset.role];
    if (!allowed) node.remove();
    else if (node.tagName === "A") node.hidden = false;
  }
}

async function refreshHealth() {
  const h = await getJSON("api/health");
  $("edge-id").textContent = h.edge;
  $("health").textContent = h.mqtt_connected ? "broker connected" : "broker unreachable";
  $("health").className = `badge ${h.mqtt_connected ? "ok" : "bad"}`;
}

const JOBS = {
  overview: () => [refreshOverview()],
  history: () => [refreshTags().then(() => ($("live").checked ? refreshChart() : null))],
  alarms: () => [],
  gateways: () => [refreshGateways(), refreshIngest()],
  defects: () => [refreshDefects()],
  commands: () => [refreshGateways().then(setGateways), refreshCommandLog()],
};

let timer = null;
async function tick() {
  clearTimeout(timer);
  const results = await Promise.allSettled([refreshHealth(), ...JOBS[currentPage()]()]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    $("health").textContent = "edge unreachable";
    $("health").className = "badge bad";
    console.warn(failed.reason);
  }
  clearTimeout(timer); // a tab switch may have started another round meanwhile
  timer = setTimeout(tick, REFRESH_MS);
}

async function start() {
  const who = await getJSON("api/auth");
  if (!who.user) { location.replace("login"); return; }
  role = ROLES[who.role] || 0;
  $("user").textContent = `${who.user} (${who.role})`;
  $("logout").hidden = !who.auth_enabled;
  applyRole();
  initHistory();
  initAlarms(role);
  if (role >= ROLES.engineer) initCommands();
  $("logout").addEventListener("click", async () => { await postJSON("api/logout"); location.replace("login"); });
  window.addEventListener("hashchange", showPage);
  await refreshLimits().catch((e) => toast(`Limits: ${e.message}`, "bad"));
  setInterval(() => refreshLimits().catch(() => {}), 60000);
  refreshAlarms().catch((e) => toast(`Alarms: ${e.message}`, "bad"));
  setInterval(() => refreshAlarms().catch(() => {}), 15000); // resync besides the live push
  showPage();
}

start();
