// The operators' page: who is logged in, which view shows (the URL hash, so views can be shared:
// #history?tags=..., #products/P-1), and a refresh loop for the visible view.
import { $, ROLES, getJSON, postJSON, toast } from "./api.js";
import { initAlarms, refreshAlarmDetails, refreshAlarms } from "./alarms.js";
import { initCommands, refreshCommandLog, refreshSetpoints } from "./commands.js";
import { refreshDefects } from "./defects.js";
import { refreshGateways, refreshIngest } from "./gateways.js";
import { initHistory, loadView, refreshChart, renderPicker } from "./history.js";
import { plantTime, refreshMeta, setZone, tags } from "./meta.js";
import { refreshLimits, refreshOverview } from "./overview.js";
import { forgetShown, initProducts, productRoute, refreshProducts, showProduct } from "./products.js";
import { initSpc, refreshSpc } from "./spc.js";

const REFRESH_MS = 1500;
const PAGES = ["overview", "history", "spc", "products", "alarms", "gateways", "defects", "commands"];
let role = 0;
let tagCount = -1;

// "#products/P-1?x" -> ["products", "/P-1?x"]
function route() {
  const hash = location.hash.slice(1);
  const cut = hash.search(/[/?]/);
  return cut < 0 ? [hash, ""] : [hash.slice(0, cut), hash.slice(cut)];
}

function currentPage() {
  const [name] = route();
  const link = document.querySelector(`#tabs a[href="#${name}"]`);
  return PAGES.includes(name) && link && !link.hidden ? name : "overview";
}

function showPage() {
  const page = currentPage();
  const [, rest] = route();
  for (const name of PAGES) if ($(name)) $(name).hidden = name !== page;
  for (const a of document.querySelectorAll("#tabs a")) {
    const on = a.getAttribute("href") === `#${page}`;
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (page === "history" && rest.startsWith("?")) { loadView(rest.slice(1)); renderPicker(); }
  if (page === "products") forgetShown();
  tick(); // now, for the new view; it also reschedules the loop
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
  setZone(h.timezone);
  $("plant-time").textContent = `${plantTime(Date.now(), false)} ${h.timezone}`;
  $("health").textContent = h.mqtt_connected ? "broker connected" : "broker unreachable";
  $("health").className = `badge ${h.mqtt_connected ? "ok" : "bad"}`;
}

// Tag metadata changes rarely (a gateway reconnects with a new catalogue): refresh it with
// each round, re-render pickers only when the set of tags changed.
async function refreshTags() {
  await refreshMeta();
  if (tags.size !== tagCount) {
    tagCount = tags.size;
    renderPicker();
  }
}

const JOBS = {
  overview: () => [refreshOverview()],
  history: () => [$("live").checked ? refreshChart() : null],
  spc: () => [refreshSpc()],
  products: () => [refreshProducts(), showProduct(productRoute(route()[1]))],
  alarms: () => [refreshAlarmDetails()],
  gateways: () => [refreshGateways(), refreshIngest()],
  defects: () => [refreshDefects()],
  commands: () => [refreshSetpoints(), refreshCommandLog()],
};

let timer = null;
async function tick() {
  clearTimeout(timer);
  const results = await Promise.allSettled([refreshHealth(), refreshTags()]);
  const jobs = await Promise.allSettled(JOBS[currentPage()]());
  const failed = [...results, ...jobs].find((r) => r.status === "rejected");
  if (failed) {
    $("health").textContent = "edge unreachable";
    $("health").className = "badge bad";
    console.warn(failed.reason);
  }
  clearTimeout(timer); // a view switch may have started another round meanwhile
  timer = setTimeout(tick, REFRESH_MS);
}

async function start() {
  const who = await getJSON("api/auth");
  if (!who.user) { location.replace("login"); return; }
  role = ROLES[who.role] || 0;
  $("user").textContent = `${who.user} (${who.role})`;
  $("logout").hidden = !who.auth_enabled;
  applyRole();
  await refreshHealth().catch(() => {});
  await refreshMeta().catch((e) => toast(`Tags: ${e.message}`, "bad"));
  initHistory();
  initSpc();
  initProducts();
  initAlarms(role);
  if (role >= ROLES.engineer) initCommands();
  $("logout").addEventListener("click", async () => { await postJSON("api/logout"); location.replace("login"); });
  window.addEventListener("hashchange", showPage);
  await refreshLimits().catch((e) => toast(`Limits: ${e.message}`, "bad"));
  setInterval(() => refreshLimits().catch(() => {}), 60000);
  refreshAlarms().catch((e) => toast(`Alarms: ${e.message}`, "bad"));
  setInterval(() => refreshAlarms().catch(() => {}), 3000); // resync besides the live push
  showPage();
}

start();
