/**
 * Waiting with a bound: poll a condition (an HTTP status, a TCP port, anything)
 * until it holds, fail with a message naming what was waited for when the
 * timeout passes, or at once when `abort` says there is no point any more (the
 * process being waited for exited). Used by the process launchers, `confab
 * cluster` and the tests alike; nothing here sleeps in place of a condition.
 */
import { connect } from 'node:net';

export interface WaitOptions {
  /** Milliseconds before giving up (default 10000). */
  timeoutMs?: number;
  /** Milliseconds between polls (default 10). */
  intervalMs?: number;
  /** What is waited for (in the error messages). */
  what?: string;
  /** Polled after each failed check: a text ends the wait at once with an error `<what>: <text>`. */
  abort?: () => string | undefined;
}

/** A bounded wait ended without its condition holding. */
export class WaitTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WaitTimeoutError';
  }
}

/** Poll `cond` until it holds; rejects after `timeoutMs` (WaitTimeoutError), at once when `abort` returns a text, or with whatever `cond` throws. */
export async function waitFor(cond: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 10, what = 'condition', abort } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    const why = abort?.();
    if (why !== undefined) throw new Error(`${what}: ${why}`);
    if (Date.now() > deadline) throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolve with the first event value matching `pred`, or reject after a timeout. */
export function nextEvent<T>(
  subscribe: (fn: (v: T) => void) => () => void,
  pred: (v: T) => boolean = () => true,
  timeoutMs = 10_000,
  what = 'event',
): Promise<T> {
  return new Promise((resolve, reject) => {
    const off = subscribe((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
    const timer = setTimeout(() => {
      off();
      reject(new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
  });
}

/** GET a URL with a short timeout; the status, 0 when nothing answers. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Whether something accepts a TCP connection on host:port now (bounded by `timeoutMs`). */
export function portAccepts(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Wait until `url` answers with `status` (default 200). */
export function waitHttp(url: string, opts: WaitOptions & { status?: number } = {}): Promise<void> {
  const want = opts.status ?? 200;
  return waitFor(async () => (await httpStatus(url)) === want, { intervalMs: 50, ...opts, what: opts.what ?? `${url} to answer ${want}` });
}

/** Wait until something accepts TCP connections on host:port. */
export function waitPort(port: number, opts: WaitOptions & { host?: string } = {}): Promise<void> {
  const host = opts.host ?? '127.0.0.1';
  return waitFor(() => portAccepts(port, host), { intervalMs: 50, ...opts, what: opts.what ?? `${host}:${port} to accept connections` });
}
