// Inline SVG chart primitives for the HTML bench report: no scripts, no network, no fonts to load.
// Every chart is a fixed viewBox (W x H user units) scaled to its container's width.
import { maxOf, minOf } from "./metrics.js";

export const W = 560;
export const H = 260;
const M = { left: 56, right: 16, top: 14, bottom: 40 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

export const COLORS = { indigo: "#4f46e5", teal: "#0d9488", amber: "#d97706", rose: "#e11d48", sky: "#0284c7", slate: "#64748b" };

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Compact number: 3 significant digits, k/M suffixes. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return "n/a";
  const a = Math.abs(x);
  if (a >= 1e6) return `${+(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(x / 1e3).toPrecision(3)}k`;
  if (a === 0) return "0";
  return `${+x.toPrecision(3)}`;
}

/** Round tick values covering [lo, hi] (about n of them), steps of 1, 2 or 5 x 10^k. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}

interface Axes { x0: number; x1: number; y0: number; y1: number; xLabel: string; yLabel: string }

const sx = (a: Axes, x: number): number => M.left + ((x - a.x0) / (a.x1 - a.x0 || 1)) * PW;
const sy = (a: Axes, y: number): number => M.top + PH - ((y - a.y0) / (a.y1 - a.y0 || 1)) * PH;

function frame(a: Axes, body: string, label: string): string {
  const parts: string[] = [];
  for (const t of niceTicks(a.y0, a.y1, 4)) {
    const y = sy(a, t).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" class="grid"/>`,
      `<text x="${M.left - 6}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${fmtNum(t)}</text>`);
  }
  for (const t of niceTicks(a.x0, a.x1, 6)) {
    const x = sx(a, t).toFixed(1);
    parts.push(`<text x="${x}" y="${H - M.bottom + 16}" class="tick" text-anchor="middle">${fmtNum(t)}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + PH}" y2="${M.top + PH}" class="axis"/>`,
    `<text x="${M.left + PW / 2}" y="${H - 6}" class="label" text-anchor="middle">${esc(a.xLabel)}</text>`,
    `<text x="14" y="${M.top + PH / 2}" class="label" text-anchor="middle" transform="rotate(-90 14 ${M.top + PH / 2})">${esc(a.yLabel)}</text>`);
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">${parts.join("")}${body}</svg>`;
}

export interface Marker { value: number; label: string }

/** Histogram of values (bins chosen by the square-root rule, 8..40) with dashed percentile markers. */
export function histogram(values: readonly number[], o: { color: string; xLabel: string; label: string; markers?: Marker[] }): string {
  if (values.length === 0) return empty(o.label);
  let lo = minOf(values);
  let hi = maxOf(values);
  if (hi === lo) { lo -= 0.5; hi += 0.5; }
  const bins = Math.max(8, Math.min(40, Math.ceil(Math.sqrt(values.length))));
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
  const a: Axes = { x0: lo, x1: hi, y0: 0, y1: maxOf(counts) * 1.1, xLabel: o.xLabel, yLabel: "requests" };
  const bars = counts.map((c, i) => {
    const x = sx(a, lo + i * width);
    const w = Math.max(1, sx(a, lo + (i + 1) * width) - x - 1);
    const y = sy(a, c);
    return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${(M.top + PH - y).toFixed(1)}" fill="${o.color}" rx="1.5">` +
      `<title>${fmtNum(lo + i * width)}–${fmtNum(lo + (i + 1) * width)}: ${c}</title></rect>`;
  });
  const marks = (o.markers ?? []).map((m, k) => {
    const x = sx(a, Math.min(hi, Math.max(lo, m.value))).toFixed(1);
    return `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + PH}" class="marker"/>` +
      `<text x="${x}" y="${M.top + 10 + 12 * k}" class="mlabel" text-anchor="${+x > W - 90 ? "end" : "start"}" dx="${+x > W - 90 ? -4 : 4}">${esc(m.label)} ${fmtNum(m.value)}</text>`;
  });
  return frame(a, bars.join("") + marks.join(""), o.label);
}

export interface Series { name: string; color: string; xs: readonly number[]; ys: readonly number[]; area?: boolean; step?: boolean }

/** Lines (optionally filled, optionally stepped) over a shared x axis, with a legend. */
export function lineChart(series: readonly Series[], o: { xLabel: string; yLabel: string; label: string }): string {
  const xs = series.flatMap((s) => s.xs);
  const ys = series.flatMap((s) => s.ys);
  if (xs.length === 0) return empty(o.label);
  const a: Axes = { x0: minOf(xs), x1: maxOf(xs), y0: 0, y1: maxOf(ys, 1e-9) * 1.12, xLabel: o.xLabel, yLabel: o.yLabel };
  const body = series.map((s) => {
    const pts: string[] = [];
    s.xs.forEach((x, i) => {
      if (s.step && i > 0) pts.push(`${sx(a, x).toFixed(1)},${sy(a, s.ys[i - 1]!).toFixed(1)}`);
      pts.push(`${sx(a, x).toFixed(1)},${sy(a, s.ys[i]!).toFixed(1)}`);
    });
    const base = sy(a, 0).toFixed(1);
    const area = s.area ? `<polygon points="${sx(a, s.xs[0]!).toFixed(1)},${base} ${pts.join(" ")} ${sx(a, s.xs[s.xs.length - 1]!).toFixed(1)},${base}" fill="${s.color}" fill-opacity="0.18"/>` : "";
    return `${area}<polyline points="${pts.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"/>`;
  });
  const legend = series.map((s, i) =>
    `<rect x="${M.left + 8 + i * 150}" y="${M.top + 2}" width="10" height="10" rx="2" fill="${s.color}"/>` +
    `<text x="${M.left + 22 + i * 150}" y="${M.top + 11}" class="tick">${esc(s.name)}</text>`);
  return frame(a, body.join("") + legend.join(""), o.label);
}

export interface BarGroup { title: string; unit: string; color: string; rows: { label: string; value: number }[] }

/** Horizontal bars, one block per group, each group scaled to its own maximum. */
export function barGroups(groups: readonly BarGroup[], label: string): string {
  const rowH = 17;
  const gap = 12;
  const height = groups.reduce((h, g) => h + 18 + g.rows.length * rowH + gap, 6);
  const parts: string[] = [];
  let y = 6;
  for (const g of groups) {
    parts.push(`<text x="4" y="${y + 12}" class="gtitle">${esc(g.title)} <tspan class="tick">(${esc(g.unit)})</tspan></text>`);
    y += 18;
    const max = maxOf(g.rows.map((r) => (Number.isFinite(r.value) ? r.value : 0)), 1e-12);
    for (const r of g.rows) {
      const w = Number.isFinite(r.value) ? Math.max(1, (r.value / max) * (W - 170)) : 0;
      parts.push(`<text x="64" y="${y + 11}" class="tick" text-anchor="end">${esc(r.label)}</text>`,
        `<rect x="70" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" rx="3" fill="${g.color}"><title>${esc(r.label)}: ${fmtNum(r.value)} ${esc(g.unit)}</title></rect>`,
        `<text x="${(76 + w).toFixed(1)}" y="${y + 11}" class="tick">${fmtNum(r.value)}</text>`);
      y += rowH;
    }
    y += gap;
  }
  return `<svg viewBox="0 0 ${W} ${height}" role="img" aria-label="${esc(label)}">${parts.join("")}</svg>`;
}

export interface Span { start: number; first: number; end: number; failed: boolean }

/** One row per request: waiting for the first token (light) then generating (dark); s on x. */
export function ganttChart(spans: readonly Span[], o: { label: string }): string {
  if (spans.length === 0) return empty(o.label);
  const a: Axes = { x0: 0, x1: maxOf(spans.map((s) => s.end)), y0: 0, y1: spans.length, xLabel: "time since start (s)", yLabel: "request" };
  const rowH = PH / spans.length;
  const body = spans.map((s, i) => {
    const y = (sy(a, i + 1) + rowH * 0.1).toFixed(2); // request 0 at the bottom, as the y ticks count
    const h = Math.max(0.6, rowH * 0.8).toFixed(2);
    const x0 = sx(a, s.start);
    const x1 = sx(a, s.first);
    const x2 = sx(a, s.end);
    if (s.failed) return `<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(1, x2 - x0).toFixed(1)}" height="${h}" fill="${COLORS.rose}"/>`;
    return `<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(0.5, x1 - x0).toFixed(1)}" height="${h}" fill="${COLORS.amber}" fill-opacity="0.55"/>` +
      `<rect x="${x1.toFixed(1)}" y="${y}" width="${Math.max(0.5, x2 - x1).toFixed(1)}" height="${h}" fill="${COLORS.indigo}"/>`;
  });
  return frame(a, body.join(""), o.label);
}

function empty(label: string): string {
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}"><text x="${W / 2}" y="${H / 2}" class="label" text-anchor="middle">no data</text></svg>`;
}
