/**
 * ioredis connections as confab wants them: no offline queue (a command while
 * disconnected fails at once instead of waiting), no resend of in-flight
 * commands after a reconnect (their outcome is unknown; callers retry with
 * their idempotency key), a bounded command timeout, capped jittered reconnect
 * backoff, and a health PING that drops a connection whose peer went silent.
 */
import { Redis } from 'ioredis';
import type pino from 'pino';
import { ConfabError } from '../protocol/codes.js';
import { Backoff } from '../shared/backoff.js';
import { Throttle } from '../shared/throttle.js';
import type { RedisSettings } from './options.js';

export type ConnSettings = Pick<RedisSettings, 'url' | 'commandTimeoutMs' | 'connectTimeoutMs' | 'reconnectMaxMs' | 'pingMs'>;

/** Open one connection; it reconnects by itself until `quitConnection`. */
export function openConnection(s: ConnSettings, name: string, opts: { commandTimeout?: boolean; pipeline?: boolean } = {}): Redis {
  const backoff = new Backoff({ minMs: Math.min(50, s.reconnectMaxMs), maxMs: s.reconnectMaxMs });
  return new Redis(s.url, {
    connectionName: name,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    enableAutoPipelining: opts.pipeline === true,
    autoResendUnfulfilledCommands: false,
    commandTimeout: opts.commandTimeout === false ? undefined : s.commandTimeoutMs,
    connectTimeout: s.connectTimeoutMs,
    retryStrategy: (times) => backoff.delay(times - 1), // ioredis counts from 1
  });
}

/** How often a connection's errors are logged at warn (the rest at debug, counted in the next warning). */
export const CONNECTION_WARN_EVERY_MS = 30_000;

/**
 * Log a connection's errors: at warn at most once per CONNECTION_WARN_EVERY_MS (with how many were
 * held back), every one at debug. ioredis reports each failed reconnect, many a second while Redis is down.
 */
export function logConnectionErrors(conn: Redis, log: pino.Logger, name: string): void {
  const throttle = new Throttle(CONNECTION_WARN_EVERY_MS);
  conn.on('error', (err: Error) => {
    const pass = throttle.pass();
    if (pass) log.warn({ err: err.message, conn: name, heldBack: pass.held }, 'redis connection error');
    else log.debug({ err: err.message, conn: name }, 'redis connection error');
  });
}

/** Connect and wait for 'ready', failing with bus_unavailable after connectTimeoutMs. */
export async function connectReady(conn: Redis, s: ConnSettings, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      conn.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${s.connectTimeoutMs} ms`)), s.connectTimeoutMs);
      }),
    ]);
  } catch (err) {
    conn.disconnect(false);
    throw new ConfabError('bus_unavailable', `redis ${what}: cannot connect to REDIS_URL (${(err as Error).message})`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every `pingMs`, PING each ready connection; when no reply comes within the command
 * timeout the connection is dropped and reconnects (catches half-open TCP).
 * Returns a stop function.
 */
export function startHealthPings(conns: Redis[], s: ConnSettings, log: pino.Logger): () => void {
  const inFlight = new Set<Redis>();
  const timer = setInterval(() => {
    for (const c of conns) {
      if (c.status !== 'ready' || inFlight.has(c)) continue;
      inFlight.add(c);
      let t: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`no PONG within ${s.commandTimeoutMs} ms`)), s.commandTimeoutMs);
      });
      Promise.race([c.ping(), timeout])
        .catch((err: unknown) => {
          if (c.status !== 'ready') return;
          log.warn({ err: (err as Error).message }, 'redis health ping failed; reconnecting');
          c.disconnect(true);
        })
        .finally(() => {
          clearTimeout(t);
          inFlight.delete(c);
        });
    }
  }, s.pingMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** QUIT politely (bounded), then make sure the socket is gone and no reconnect follows. */
export async function quitConnection(conn: Redis, timeoutMs: number): Promise<void> {
  if (conn.status === 'end') return;
  if (conn.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      conn.quit().catch(() => undefined),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
  conn.disconnect(false);
}

/** Map an ioredis failure to a typed error: a Redis error reply = store_failed; a connection problem = bus_unavailable. */
export function typedError(err: unknown, what: string): ConfabError {
  if (err instanceof ConfabError) return err;
  const e = err as Error;
  const reply = e?.name === 'ReplyError' || /^(ERR|OOM|NOSCRIPT|WRONGTYPE|READONLY|MISCONF|BUSY|NOPERM|LOADING)\b/.test(e?.message ?? '');
  const connDown = /^(READONLY|MISCONF|LOADING|BUSY)\b/.test(e?.message ?? '');
  return new ConfabError(reply && !connDown ? 'store_failed' : 'bus_unavailable', `redis ${what}: ${e?.message ?? String(err)}`, { cause: err });
}
