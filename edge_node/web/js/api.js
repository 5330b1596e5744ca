// Talking to the edge's HTTP API (see /docs): JSON in and out, a 401 sends us to the login page.
export const ROLES = { viewer: 1, operator: 2, engineer: 3 };
export const $ = (id) => document.getElementById(id);

export class HttpError extends Error {
  constructor(path, status, detail) {
    super(`${path}: ${detail || `HTTP ${status}`}`);
    this.status = status;
    this.detail = detail;
  }
}

async function request(path, options = {}) {
  const response = await fetch(path, { cache: "no-store", ...options });
  if (response.status === 401) {
    location.replace("login");
    throw new HttpError(path, 401, "not logged in");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new HttpError(path, response.status, typeof body.detail === "string" ? body.detail : "");
  }
  return response.status === 204 ? null : response.json();
}

export const getJSON = (path) => request(path);

export const postJSON = (path, body) => request(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}),
});

// Optional endpoints (another part of the edge may not be deployed): null when absent.
export async function getOptional(path) {
  try {
    return await request(path);
  } catch (error) {
    if (error.status === 404 || error.status === 503) return null;
    throw error;
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${s.toFixed(0)} s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

export function duration(s) {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function formatValue(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return v === null || v === undefined ? "—" : String(v);
}

// Today's times as a time of day; older ones with their date.
export function clock(ms) {
  if (!ms) return "";
  const moment = new Date(ms);
  return moment.toDateString() === new Date().toDateString() ? moment.toLocaleTimeString() : moment.toLocaleString();
}

export function toast(text, kind = "") {
  const note = el("div", { class: `toast ${kind}` }, text);
  $("toasts").append(note);
  setTimeout(() => note.remove(), 6000);
}
