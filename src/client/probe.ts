/**
 * Readiness probe: while the client waits to reconnect, it asks the gateway it will
 * try next whether it is back (`GET <origin>/readyz`, 200 = ready), so it reconnects
 * within seconds of the server's return instead of sleeping out a long backoff step.
 *
 * No dependency: uses the platform's `fetch` (browsers, Node ≥ 18). Every seam
 * (fetch, timers, clock, random) is injectable so the policy is unit-tested.
 */

/** Probe parameters, in milliseconds. */
export interface ProbeOptions {
  /** Mean time between probes at the start of an outage (default 2000; each gap is uniform in [0.5, 1.5] × mean). */
  intervalMs: number;
  /** The mean grows to a tenth of the outage's length, up to this (default 8000). */
  maxIntervalMs: number;
  /** A probe without an answer after this counts as "not ready" (default 2000). */
  timeoutMs: number;
  /** Path on the gateway's HTTP origin (default '/readyz'). */
  path: string;
}

export const DEFAULT_PROBE: ProbeOptions = { intervalMs: 2000, maxIntervalMs: 8000, timeoutMs: 2000, path: '/readyz' };

/** The part of `fetch` the probe uses; the platform's fetch fits. */
export type FetchLike = (
  url: string,
  init: { method: 'GET'; signal: AbortSignal; credentials: 'omit'; redirect: 'error' },
) => Promise<{ status: number; body?: { cancel(): Promise<void> } | null }>;

/** Timer and clock seams (default: the global setTimeout/clearTimeout and Date.now). */
export interface ProbeTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const REAL_TIMERS: ProbeTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/** The readiness URL of a gateway URL: ws(s)/http(s)://host[:port]/anything → http(s)://host[:port]/readyz. */
export function probeUrl(base: string, path = DEFAULT_PROBE.path): string {
  const u = new URL(base);
  const scheme = u.protocol === 'ws:' || u.protocol === 'http:' ? 'http:' : u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : undefined;
  if (!scheme) throw new TypeError(`unsupported URL scheme ${u.protocol}`);
  return `${scheme}//${u.host}${path.startsWith('/') ? path : `/${path}`}`;
}

/**
 * The probe schedule and the rule for cutting a reconnect wait short.
 *
 * A 200 ends the wait only with evidence that the server was away: an earlier probe
 * failed (network error, timeout, any other status), or the last connection attempt,
 * started by the backoff timer, failed. An attempt that a probe started and that failed
 * gives no such credit, so a server that answers /readyz but refuses the socket
 * (401, 429, a proxy without upgrades) sees at most one extra attempt per backoff step.
 */
export class ReadinessProbe {
  readonly options: ProbeOptions;
  readonly #fetch: FetchLike | undefined;
  readonly #timers: ProbeTimers;
  readonly #random: () => number;
  #outageStart: number | undefined;
  #sawDown = false;
  #credit = false;
  #run = 0;
  #timer: unknown;
  #abort: AbortController | undefined;
  /** Probes sent so far (for tests and metrics). */
  sent = 0;

  constructor(opts: Partial<ProbeOptions> | false | undefined, deps: { fetch?: FetchLike; timers?: ProbeTimers; random?: () => number } = {}) {
    const o = { ...DEFAULT_PROBE, ...(opts || {}) };
    if (!(Number.isFinite(o.intervalMs) && o.intervalMs >= 100)) throw new RangeError('probe.intervalMs must be a number >= 100');
    if (!(Number.isFinite(o.maxIntervalMs) && o.maxIntervalMs >= o.intervalMs)) throw new RangeError('probe.maxIntervalMs must be a number >= intervalMs');
    if (!(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) throw new RangeError('probe.timeoutMs must be a number > 0');
    if (typeof o.path !== 'string') throw new TypeError('probe.path must be a string');
    this.options = o;
    const g = globalThis as { fetch?: FetchLike };
    this.#fetch = opts === false ? undefined : (deps.fetch ?? (typeof g.fetch === 'function' ? g.fetch.bind(globalThis) : undefined));
    this.#timers = deps.timers ?? REAL_TIMERS;
    this.#random = deps.random ?? Math.random;
  }

  /** False when probing is off (`probe: false`) or there is no fetch. */
  get enabled(): boolean {
    return this.#fetch !== undefined;
  }
  /** True while a probing loop runs. */
  get running(): boolean {
    return this.#timer !== undefined || this.#abort !== undefined;
  }

  /** Mean gap between probes now: intervalMs, growing to a tenth of the outage's length, at most maxIntervalMs. */
  meanInterval(): number {
    const elapsed = this.#outageStart === undefined ? 0 : this.#timers.now() - this.#outageStart;
    return Math.min(this.options.maxIntervalMs, Math.max(this.options.intervalMs, elapsed / 10));
  }

  /** The next gap: uniform in [0.5, 1.5] × meanInterval() (never below intervalMs / 2). */
  nextDelay(): number {
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(this.meanInterval() * (0.5 + r));
  }

  /** The connection is lost (or an attempt ended without `welcome`). `failedAttempt` and `byProbe` describe the attempt that just ended. */
  noteDown(failedAttempt: boolean, byProbe: boolean): void {
    this.#outageStart ??= this.#timers.now();
    if (failedAttempt) this.#credit = !byProbe;
  }

  /** `welcome` arrived: the outage is over. */
  noteUp(): void {
    this.stop();
    this.#outageStart = undefined;
    this.#sawDown = false;
    this.#credit = false;
  }

  /** Probe `url` until stop(); call `onReady` once when the server is back (see the class comment). */
  start(url: string, onReady: () => void): void {
    this.stop();
    if (!this.#fetch) return;
    const target = probeUrl(url, this.options.path);
    const run = this.#run;
    const schedule = (): void => {
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        void this.#probe(run, target, onReady, schedule);
      }, this.nextDelay());
    };
    schedule();
  }

  /** Stop probing; an answer still in flight is ignored. */
  stop(): void {
    this.#run++;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
  }

  async #probe(run: number, target: string, onReady: () => void, again: () => void): Promise<void> {
    const ac = new AbortController();
    this.#abort = ac;
    const timeout = this.#timers.setTimeout(() => ac.abort(), this.options.timeoutMs);
    let up = false;
    this.sent++;
    try {
      const res = await this.#fetch!(target, { method: 'GET', signal: ac.signal, credentials: 'omit', redirect: 'error' });
      up = res.status === 200;
      try {
        res.body?.cancel().catch(() => {});
      } catch {
        /* body already used or not cancellable */
      }
    } catch {
      up = false; // refused, reset, DNS, CORS, aborted by the timeout
    } finally {
      this.#timers.clearTimeout(timeout);
    }
    if (run !== this.#run) return; // stopped meanwhile
    this.#abort = undefined;
    if (!up) {
      this.#sawDown = true;
      again();
      return;
    }
    if (this.#sawDown || this.#credit) {
      this.#sawDown = false;
      this.#credit = false;
      this.stop();
      try {
        onReady();
      } catch (err) {
        this.#timers.setTimeout(() => {
          throw err;
        }, 0); // surface it like a listener error, never as an unhandled rejection
      }
      return;
    }
    again();
  }
}
