/**
 * Client-side pacing: a token bucket mirroring the server's per-connection limit
 * (`welcome.limits.ratePerSec` tokens a second, `rateBurst` at most), shared by every frame the
 * client sends, so the client normally never meets `rate_limited`.
 */

/** How much of the server's budget the client allows itself. */
export interface PacingOptions {
  /** Share of `ratePerSec` the client refills at (default 0.95). */
  rateShare: number;
  /**
   * Share of `rateBurst` the client's bucket holds (default 0.5). The rest is slack for delivery
   * jitter: the server counts a frame when it reads it, so frames sent at a paced rate can reach it
   * bunched (a stalled client or server, a busy network). With half the burst held back, a frame may
   * be ~1 s later than the ones after it (at the default 20/s, burst 40) before the server refuses one.
   */
  burstShare: number;
}

export const DEFAULT_PACING: PacingOptions = { rateShare: 0.95, burstShare: 0.5 };

/** Token bucket on an injectable clock: `rate` tokens per second up to `burst`, refilled lazily. */
export class Pacer {
  readonly rate: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** `rate` ≤ 0 or not finite: no limit (every take succeeds). */
  constructor(rate: number, burst: number, now: () => number = Date.now) {
    this.rate = Number.isFinite(rate) && rate > 0 ? rate : Infinity;
    this.burst = this.rate === Infinity ? Infinity : Math.max(1, Number.isFinite(burst) && burst >= 1 ? Math.floor(burst) : 1);
    this.#now = now;
    this.#tokens = this.burst;
    this.#at = now();
  }

  /** No limit: the server announced none. */
  static unlimited(now: () => number = Date.now): Pacer {
    return new Pacer(Infinity, Infinity, now);
  }

  /**
   * The client's bucket for the server's announced limits: `rateShare` of the rate, `burstShare`
   * of the burst (at least 1). Limits missing or not positive: unlimited.
   */
  static forLimits(limits: { ratePerSec?: unknown; rateBurst?: unknown } | undefined, opts: Partial<PacingOptions> = {}, now: () => number = Date.now): Pacer {
    const o = { ...DEFAULT_PACING, ...opts };
    const rate = typeof limits?.ratePerSec === 'number' ? limits.ratePerSec : NaN;
    const burst = typeof limits?.rateBurst === 'number' ? limits.rateBurst : NaN;
    if (!(rate > 0) || !Number.isFinite(rate)) return Pacer.unlimited(now);
    // a server with no burst (or a missing one) still lets one frame through at a time
    return new Pacer(rate * o.rateShare, Math.floor((burst > 0 && Number.isFinite(burst) ? burst : 1) * o.burstShare), now);
  }

  get limited(): boolean {
    return this.rate !== Infinity;
  }

  /** Tokens available now (fractional). */
  available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Take one token if there is one. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until one token is available (0 when there is one now). */
  waitMs(): number {
    this.#refill();
    if (this.#tokens >= 1) return 0;
    return Math.ceil(((1 - this.#tokens) / this.rate) * 1000);
  }

  /** Empty the bucket: the server said it is over its limit (`rate_limited`), so its bucket is empty too. */
  drain(): void {
    this.#refill();
    if (this.limited) this.#tokens = 0;
  }

  #refill(): void {
    const now = this.#now();
    if (this.limited && now > this.#at) this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = Math.max(this.#at, now);
  }
}
