/**
 * A log-linear latency histogram (HDR-style, <1% relative error, constant
 * memory), used by `confab load` and by the bench.
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
