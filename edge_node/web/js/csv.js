// CSV of what the history view shows: one row per time, one column per series (mean, min and
// max for summarised series), times in the plant's zone and as UTC milliseconds.
import { label, plantZone, toPlantInput, unitOf } from "./meta.js";

const quote = (v) => (v === null || v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));

export function toCsv(body) {
  const columns = [];
  for (const s of body.series) {
    const name = `${label(s.name)}${unitOf(s.name) ? ` [${unitOf(s.name)}]` : ""}`;
    if (s.mode === "minmax") for (const k of ["mean", "min", "max"]) columns.push([`${name} ${k}`, s, k]);
    else columns.push([name, s, "v"]);
  }
  const times = [...new Set(body.series.flatMap((s) => s.t))].sort((a, b) => a - b);
  const index = body.series.map((s) => new Map(s.t.map((t, i) => [t, i])));
  const header = [`time (${plantZone()})`, "epoch_ms_utc", ...columns.map((c) => c[0])];
  const lines = [header.map(quote).join(",")];
  for (const t of times) {
    const cells = columns.map(([, s, k]) => {
      const i = index[body.series.indexOf(s)].get(t);
      return i === undefined ? "" : s[k][i];
    });
    lines.push([toPlantInput(t), t, ...cells].map(quote).join(","));
  }
  return `${lines.join("\n")}\n`;
}

export function downloadCsv(body, filename) {
  const url = URL.createObjectURL(new Blob([toCsv(body)], { type: "text/csv" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
