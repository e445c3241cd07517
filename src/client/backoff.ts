/** Reconnect delay bounds, in milliseconds. */
export interface BackoffOptions {
  /** Smallest delay and the base of the exponential cap (default 500). */
  minMs: number;
  /** Largest delay (default 10000). */
  maxMs: number;
}

/**
 * 0.5 s to 10 s. The cap was 20 s: with a readiness probe ending waits as soon as the server is
 * back, the cap only matters where probing cannot work (no fetch, /readyz not reachable), and
 * 10 s halves that worst case while a dead server still sees ≤ 1 attempt per ~5 s per client.
 */
export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 500, maxMs: 10_000 };

/**
 * Exponential backoff with full jitter: attempt n (0-based) waits a uniformly random
 * time in [minMs, min(maxMs, minMs * 2^(n+1))]. The cap grows until it reaches maxMs,
 * so a crowd of clients spreads out instead of reconnecting in lock-step.
 */
export class Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  #attempt = 0;
  readonly #random: () => number;

  constructor(opts: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    const o = { ...DEFAULT_BACKOFF, ...opts };
    if (!(Number.isFinite(o.minMs) && o.minMs >= 0)) throw new RangeError('backoff.minMs must be a number >= 0');
    if (!(Number.isFinite(o.maxMs) && o.maxMs >= o.minMs)) throw new RangeError('backoff.maxMs must be a number >= minMs');
    this.minMs = o.minMs;
    this.maxMs = o.maxMs;
    this.#random = random;
  }

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The upper bound of the delay for a given attempt. */
  capFor(attempt: number): number {
    const exp = this.minMs * 2 ** Math.min(attempt + 1, 40);
    return Math.min(this.maxMs, Math.max(this.minMs, exp));
  }

  /** The next delay; advances the attempt counter. */
  next(): number {
    const cap = this.capFor(this.#attempt);
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(this.minMs + r * (cap - this.minMs));
  }

  /** A delay of the first step, [minMs, capFor(0)], without advancing the counter (a first try elsewhere). */
  first(): number {
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(this.minMs + r * (this.capFor(0) - this.minMs));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
