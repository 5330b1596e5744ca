// What each tag is (GET /api/tags: the gateways' catalogues merged with master data) and how
// values and times read: labels, units, enumeration names, precision, the plant's time zone.
import { getJSON } from "./api.js";

export const tags = new Map(); // name -> tag metadata
let zone = "UTC";

export async function refreshMeta() {
  const list = await getJSON("api/tags");
  tags.clear();
  for (const t of list) tags.set(t.name, t);
  return list;
}

export const setZone = (tz) => { zone = tz || "UTC"; };
export const plantZone = () => zone;

export function label(name) {
  return tags.get(name)?.label || name.split("/").pop();
}

export function unitOf(name) {
  return tags.get(name)?.unit || "";
}

// "processing" for an enumerated 2, "on"/"off" for booleans, numbers with the tag's precision.
export function show(name, value) {
  const t = tags.get(name);
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (t?.enum && Object.keys(t.enum).length && typeof value === "number") {
    const named = t.enum[String(value)];
    return named ?? `${value} (no name)`;
  }
  if (typeof value === "number") {
    if (t?.type === "int" || (Number.isInteger(value) && t?.precision == null)) return String(Math.round(value));
    const digits = t?.precision ?? (Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 10 ? 2 : 3);
    return value.toFixed(digits);
  }
  return String(value);
}

export const withUnit = (name, value) => {
  const u = unitOf(name);
  const text = show(name, value);
  return u && text !== "—" && typeof value === "number" && !tags.get(name)?.enum?.[String(value)] ? `${text} ${u}` : text;
};

const formats = new Map();
function formatter(options) {
  const key = `${zone}|${JSON.stringify(options)}`;
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", ...options }));
  return formats.get(key);
}

// Plant time: today's as a time of day, older ones with their date.
export function plantTime(ms, seconds = true) {
  if (!ms) return "";
  const time = formatter({ hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) }).format(ms);
  const day = formatter({ year: "numeric", month: "2-digit", day: "2-digit" });
  return day.format(ms) === day.format(Date.now()) ? time : `${day.format(ms)} ${time}`;
}

// Parts of a moment in the plant's zone.
function parts(ms) {
  const p = {};
  for (const { type, value } of formatter({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(ms)) p[type] = value;
  return p;
}

// "2026-12-07T09:30:00" in the plant's zone, for <input type=datetime-local> and CSV.
export function toPlantInput(ms) {
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}

// The inverse: a plant-zone wall time to epoch ms (two passes settle DST edges).
export function fromPlantInput(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text || "");
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  let guess = wall;
  for (let i = 0; i < 2; i++) {
    const p = parts(guess);
    const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    guess += wall - shown;
  }
  return guess;
}

// uPlot draws its time axis in this zone.
export const tzDate = (seconds) => uPlot.tzDate(new Date(seconds * 1000), zone);

// The time axis of every chart, in the plant's zone and 24-hour time; dates when it spans days.
export function timeAxis() {
  return {
    space: 70,
    values: (u, ticks) => {
      const span = ticks.length > 1 ? ticks.at(-1) - ticks[0] : 0;
      const withSeconds = span < 300;
      const day = formatter({ month: "2-digit", day: "2-digit" });
      const time = formatter({ hour: "2-digit", minute: "2-digit", ...(withSeconds ? { second: "2-digit" } : {}) });
      return ticks.map((t) => (span > 2 * 86400 ? day.format(t * 1000) : time.format(t * 1000)));
    },
  };
}
