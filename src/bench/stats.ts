/**
 * Statistics for the bench: a log-linear latency histogram (HDR-style, <1%
 * relative error, constant memory), and median/range summaries across runs.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per power of two
const MAX_EXP = 40;

/**
 * Latency histogram over non-negative integer microseconds. Values below 128 µs
 * are exact; above, each power of two is split into 128 buckets. Mergeable and
 * serialisable (for IPC between the load generator and the runner).
 */
export class Histogram {
  counts: Float64Array;
  total = 0;
  max = 0;
  sum = 0;
  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array((MAX_EXP + 1) * SUB);
    if (counts) {
      for (let i = 0; i < counts.length; i++) {
        const c = counts[i] ?? 0;
        this.counts[i] = c;
        this.total += c;
      }
    }
  }

  static index(us: number): number {
    const v = us < 0 ? 0 : Math.floor(us);
    if (v < SUB) return v;
    const exp = 31 - Math.clz32(v) - SUB_BITS + 1; // >= 1
    const e = exp > MAX_EXP ? MAX_EXP : exp;
    const sub = Math.floor(v / 2 ** (e - 1)) - SUB; // 0..127 (top half of the range)
    return e * SUB + (sub < 0 ? 0 : sub > SUB - 1 ? SUB - 1 : sub);
  }

  /** Upper bound (µs) of a bucket: reported percentiles never under-state latency. */
  static upper(i: number): number {
    const e = Math.floor(i / SUB);
    const sub = i % SUB;
    if (e === 0) return sub;
    return (SUB + sub + 1) * 2 ** (e - 1) - 1;
  }

  record(us: number): void {
    this.counts[Histogram.index(us)]++;
    this.total++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < other.counts.length; i++) this.counts[i] += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** Percentile in µs (q in 0..100). */
  percentile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.ceil((q / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank && seen > 0) return Math.min(Histogram.upper(i), this.max);
    }
    return this.max;
  }

  /** Sparse form for IPC: [index, count] pairs. */
  toJSON(): { pairs: number[]; total: number; max: number; sum: number } {
    const pairs: number[] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) pairs.push(i, this.counts[i]!);
    return { pairs, total: this.total, max: this.max, sum: this.sum };
  }

  static fromJSON(j: { pairs: number[]; total: number; max: number; sum: number }): Histogram {
    const h = new Histogram();
    for (let k = 0; k < j.pairs.length; k += 2) h.counts[j.pairs[k]!] = j.pairs[k + 1]!;
    h.total = j.total;
    h.max = j.max;
    h.sum = j.sum;
    return h;
  }
}

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
