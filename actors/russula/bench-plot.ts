/**
 * The plot of a benchmark: p99 latency against throughput, one line per label (one `results/LABEL`
 * directory), one point per load (the mean over its ok runs), in load order. SVG, self-contained,
 * no script; every text escaped. `troupe bench plot results/A results/B` compares two versions.
 *
 * Each line is a `<polyline class="series" data-label="LABEL">`; a label with no ok run with both
 * numbers still gets its legend entry and an empty line, so the count of lines is the count of labels.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, RussulaError } from '../../src/errors.js';
import type { BenchRunResult } from './bench-results.js';

export interface PlotSeries {
  label: string;
  points: { load: number; throughput: number; p99: number }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 720;
const H = 440;
const M = { left: 70, right: 170, top: 30, bottom: 50 };

/** The points of one results directory: per load, the mean throughput and p99 of its ok runs. */
export function readSeries(dir: string): PlotSeries {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch (err) {
    throw new RussulaError(ErrorCodes.BENCH_INVALID, `cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const byLoad = new Map<number, { t: number[]; p: number[] }>();
  let label = path.basename(path.resolve(dir));
  for (const name of names) {
    let r: BenchRunResult;
    try {
      r = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as BenchRunResult;
    } catch {
      continue; // not a run's result
    }
    if (typeof r?.load !== 'number' || typeof r.summary !== 'object') continue;
    if (typeof r.label === 'string') label = r.label;
    if (!r.ok || r.summary.throughput === null || r.summary.latency?.p99 === null) continue;
    const e = byLoad.get(r.load) ?? { t: [], p: [] };
    e.t.push(r.summary.throughput);
    e.p.push(r.summary.latency.p99);
    byLoad.set(r.load, e);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const points = [...byLoad.entries()].sort((a, b) => a[0] - b[0]).map(([load, e]) => ({ load, throughput: mean(e.t), p99: mean(e.p) }));
  return { label, points };
}

export function plotSvg(series: readonly PlotSeries[], title = 'p99 latency against throughput'): string {
  const all = series.flatMap((s) => s.points);
  const xMax = niceMax(Math.max(0, ...all.map((p) => p.throughput)));
  const yMax = niceMax(Math.max(0, ...all.map((p) => p.p99)));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number) => M.left + (v / xMax) * pw;
  const y = (v: number) => M.top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="18" font-size="14">${esc(title)}</text>`);
  out.push(`<g class="axes" stroke="#333333" fill="none"><line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}"/><line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}"/></g>`);
  out.push(`<g class="ticks" fill="#333333">`);
  for (let i = 0; i <= 5; i++) {
    const xv = (xMax * i) / 5;
    const yv = (yMax * i) / 5;
    out.push(`<line x1="${x(xv).toFixed(1)}" y1="${M.top + ph}" x2="${x(xv).toFixed(1)}" y2="${M.top + ph + 4}" stroke="#333333"/><text x="${x(xv).toFixed(1)}" y="${M.top + ph + 16}" text-anchor="middle">${esc(short(xv))}</text>`);
    out.push(`<line x1="${M.left - 4}" y1="${y(yv).toFixed(1)}" x2="${M.left}" y2="${y(yv).toFixed(1)}" stroke="#333333"/><text x="${M.left - 6}" y="${(y(yv) + 4).toFixed(1)}" text-anchor="end">${esc(short(yv))}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">throughput (per second)</text>`);
  out.push(`<text x="16" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + ph / 2})">p99 latency</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.map((p) => `${x(p.throughput).toFixed(1)},${y(p.p99).toFixed(1)}`).join(' ');
    out.push(`<polyline class="series" data-label="${esc(s.label)}" points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of s.points) out.push(`<circle cx="${x(p.throughput).toFixed(1)}" cy="${y(p.p99).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.label}: load ${p.load}, ${short(p.throughput)}/s, p99 ${short(p.p99)}`)}</title></circle>`);
    const ly = M.top + 10 + i * 18;
    out.push(`<g class="legend"><line x1="${W - M.right + 15}" y1="${ly}" x2="${W - M.right + 35}" y2="${ly}" stroke="${color}" stroke-width="2"/><text x="${W - M.right + 40}" y="${ly + 4}">${esc(s.label.slice(0, 24))}</text></g>`);
  });
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}

/** Reads each directory and writes the plot to `file` (temporary name, then renamed). */
export function writePlot(file: string, dirs: readonly string[]): PlotSeries[] {
  const series = dirs.map(readSeries);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(tmp, plotSvg(series));
  fs.renameSync(tmp, file);
  return series;
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v.toPrecision(3)).toString();
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}
