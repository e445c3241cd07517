/**
 * The one retry delay of confab: exponential backoff with full jitter, used by every retry loop
 * in the SDK and the server (client reconnects, Redis reconnects, JetStream appends and stream
 * creation, the cluster supervisor's restarts, a room's catch-up after an outage). Browser-safe:
 * no Node built-ins (the SDK bundles it).
 */

/** Delay bounds, in milliseconds. */
export interface BackoffOptions {
  /** Smallest delay and the base of the exponential cap (default 500). */
  minMs: number;
  /** Largest delay (default 10000). */
  maxMs: number;
}

/**
 * 0.5 s to 10 s, the SDK's reconnect default. The cap was 20 s: with a readiness probe ending
 * waits as soon as the server is back, the cap only matters where probing cannot work (no fetch,
 * /readyz not reachable), and 10 s halves that worst case while a dead server still sees ≤ 1
 * attempt per ~5 s per client.
 */
export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 500, maxMs: 10_000 };

/**
 * Exponential backoff with full jitter: attempt n (0-based) waits a uniformly random time in
 * [minMs, min(maxMs, minMs · 2^(n+1))] (with minMs 0 the cap grows from 2 ms). The cap doubles
 * until it reaches maxMs, so a crowd of clients (or gateways) spreads out instead of retrying in
 * lock-step.
 *
 * Stateful use: `next()` per failure, `reset()` after a success. Stateless use (a library that
 * counts attempts itself, e.g. ioredis' retryStrategy): `delay(attempt)`.
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

  /** The upper bound of the delay for a given attempt (0-based). */
  capFor(attempt: number): number {
    // minMs 0 (no floor) still grows: from 1 ms
    const exp = Math.max(this.minMs, 1) * 2 ** Math.min(Math.max(attempt, 0) + 1, 40);
    return Math.min(this.maxMs, Math.max(this.minMs, exp));
  }

  /** A jittered delay for a given attempt (0-based), in [minMs, capFor(attempt)]; changes no state. */
  delay(attempt: number): number {
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(this.minMs + r * (this.capFor(attempt) - this.minMs));
  }

  /** The next delay; advances the attempt counter. */
  next(): number {
    return this.delay(this.#attempt++);
  }

  /** A delay of the first step, [minMs, capFor(0)], without advancing the counter (a first try elsewhere). */
  first(): number {
    return this.delay(0);
  }

  /** Wait the next delay (advances the attempt counter). */
  wait(): Promise<void> {
    return sleep(this.next());
  }

  /** Start over from the first step (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
