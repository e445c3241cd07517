/**
 * Statistics for the bench: the latency histogram of `confab load`
 * (src/load/histogram.ts) and median/range summaries across runs.
 */
export { Histogram } from '../load/histogram.js';

/** A figure summarised over runs: median with its range. `n` is the number of runs that produced a value. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(values: (number | null | undefined)[]): Summary | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** Median of per-run ratios a[i]/b[i] (runs where both exist), with range. */
export function ratioSummary(a: (number | null | undefined)[], b: (number | null | undefined)[]): Summary | null {
  const r: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y) && y !== 0) r.push(x / y);
  }
  return summarize(r);
}

/** Human formatting: 1234567 -> "1.23M", 12345 -> "12.3k". */
export function fmtNum(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${(n / 1e3).toPrecision(digits)}k`;
  if (a >= 100) return n.toFixed(0);
  if (a >= 1) return n.toPrecision(digits);
  if (a === 0) return '0';
  return n.toPrecision(2);
}

/** Format a latency given in µs as ms. */
export function fmtMs(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return '–';
  const ms = us / 1000;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}
