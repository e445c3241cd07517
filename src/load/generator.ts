/**
 * The load generator: N SDK clients (the `ws` package as WebSocket, in-memory
 * storage) over one or more gateways, R rooms, P publishers sending at a fixed
 * total rate, each message stamped with its *scheduled* send time (a sender that
 * falls behind catches up with the original times: no coordinated omission).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, ROOM_RE, HANDLE_RE, socketUrl, type ClientError, type ConnectionState, type WebSocketCtor } from '../client/index.js';
import { LoadError } from './errors.js';
import { FD_HEADROOM, fdLimit, openFds } from './fds.js';
import { encodePayload, newRunId } from './payload.js';
import { LoadTracker, type MemberTrack } from './tracker.js';
import type { LoadOptions, LoadProgress, LoadReport, Percentiles, ReconnectSample, RoomLayout } from './types.js';

type Resolved = Required<Omit<LoadOptions, 'onProgress' | 'signal' | 'client' | 'connectTimeoutMs'>> &
  Pick<LoadOptions, 'onProgress' | 'signal' | 'client'> & { connectTimeoutMs: number };

/** One simulated user. */
export interface LoadSlot {
  readonly index: number;
  readonly room: string;
  readonly home: string;
  readonly handle: string;
  readonly publisher: boolean;
  client?: ConfabClient;
  member: MemberTrack;
  /** Node from the last `welcome`. */
  node?: string;
  /** Set while away from `connected` (performance.now() when it left), with the node it left. */
  downAt?: number;
  downFrom?: string;
  /** While away: when `connected` came back (before the rooms were re-joined). */
  upAt?: number;
  /** Last socket error (e.g. `Unexpected server response: 429`). */
  socketError?: string;
}

/** The `ws` constructor, recording socket errors on the slot (the SDK keeps HTTP statuses at upgrade to itself). */
function socketFor(s: LoadSlot): WebSocketCtor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.on('error', (e: Error) => (s.socketError = e.message));
    }
  } as unknown as WebSocketCtor;
}

const UPGRADE_HINTS: Record<string, string> = {
  '401': 'the session was refused: do all the URLs share CONFAB_SECRET?',
  '403': 'forbidden origin (CONFAB_ALLOWED_ORIGINS)',
  '429': 'too many connections from this address: raise CONFAB_MAX_CONN_PER_IP on the gateways or lower --clients',
};

const DEFAULTS = {
  clients: 200,
  rooms: 10,
  layout: 'spread' as RoomLayout,
  publishers: 10,
  rate: 100,
  durationMs: 30_000,
  payloadBytes: 100,
  tailMs: 10_000,
  connectConcurrency: 50,
  roomPrefix: 'load',
  handlePrefix: 'ld',
};

function int(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new LoadError('bad_option', `${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** Check options and fill in defaults; throws LoadError('bad_option') naming the option. */
export function resolveOptions(o: LoadOptions): Resolved {
  if (!Array.isArray(o?.urls) || o.urls.length === 0) throw new LoadError('bad_option', 'urls: give at least one gateway URL');
  for (const u of o.urls) {
    try {
      socketUrl(u, 'x');
    } catch (e) {
      throw new LoadError('bad_option', `url ${JSON.stringify(u)}: expected http(s):// or ws(s)://host:port`, { cause: e });
    }
  }
  const r = { ...DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as Resolved;
  int('clients', r.clients, 1, 100_000);
  int('rooms', r.rooms, 1, 10_000);
  int('publishers', r.publishers, 1, r.clients);
  int('payloadBytes', r.payloadBytes, 16, 1_000_000);
  int('durationMs', r.durationMs, 1, 3_600_000);
  int('tailMs', r.tailMs, 0, 600_000);
  int('connectConcurrency', r.connectConcurrency, 1, 10_000);
  if (!(typeof r.rate === 'number' && r.rate > 0 && r.rate <= 1_000_000)) throw new LoadError('bad_option', `rate must be a number in (0, 1000000] messages/s, got ${r.rate}`);
  if (r.layout !== 'spread' && r.layout !== 'one') throw new LoadError('bad_option', `layout must be 'spread' or 'one', got ${JSON.stringify(r.layout)}`);
  if (r.layout === 'spread' && r.rooms > r.clients) throw new LoadError('bad_option', `rooms (${r.rooms}) must not exceed clients (${r.clients}) with the spread layout`);
  if (!ROOM_RE.test(`${r.roomPrefix}${r.rooms - 1}`)) throw new LoadError('bad_option', `roomPrefix ${JSON.stringify(r.roomPrefix)} does not make valid room names`);
  if (!HANDLE_RE.test(`${r.handlePrefix}abcdef-${r.clients - 1}`)) throw new LoadError('bad_option', `handlePrefix ${JSON.stringify(r.handlePrefix)} does not make valid handles`);
  r.connectTimeoutMs = o.connectTimeoutMs ?? 30_000 + 10 * r.clients;
  int('connectTimeoutMs', r.connectTimeoutMs, 1, 3_600_000);
  return r;
}

function percentiles(sorted: number[]): Percentiles {
  const n = sorted.length;
  const at = (q: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
  return { count: n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: n ? sorted[n - 1]! : NaN, mean: n ? sorted.reduce((a, b) => a + b, 0) / n : NaN };
}

/** Run `fn` over `items` with at most `limit` at once; the first failure stops new starts and is rethrown. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined; // boxed: a thrown `undefined` still stops the pool
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed === undefined) return;
  const { error } = failed;
  throw error instanceof Error ? error : new Error(`non-Error thrown: ${String(error)}`, { cause: error });
}

/**
 * A load run in three steps: `connect()` (sessions, sockets, joins), `send()`
 * (publish for the duration, then wait for the tail), `report()`. `close()`
 * always. `runLoad()` does all of it.
 */
export class LoadGenerator {
  readonly run: string;
  readonly opts: Resolved;
  readonly tracker: LoadTracker;
  readonly slots: LoadSlot[] = [];
  readonly reconnects: ReconnectSample[] = [];
  readonly clientErrors: Record<string, number> = {};
  readonly warnings: string[] = [];
  #closing = false;
  #connectMs = 0;
  #sendMs = 0;
  #tailMs = 0;
  #drained = false;
  #started = performance.now();
  #nodesAtStart: Record<string, number> = {};

  constructor(options: LoadOptions) {
    this.opts = resolveOptions(options);
    this.run = newRunId();
    this.tracker = new LoadTracker(this.run);
    const { clients, rooms, layout, roomPrefix, handlePrefix, urls, publishers } = this.opts;
    for (let i = 0; i < clients; i++) {
      const room = `${roomPrefix}${layout === 'one' ? 0 : i % rooms}`;
      // client p is publisher p: with the spread layout it sits in room p mod rooms
      this.slots.push({ index: i, room, home: urls[i % urls.length]!, handle: `${handlePrefix}${this.run}-${i}`, publisher: i < publishers, member: this.tracker.addMember(room, i) });
    }
  }

  /** Open every session and socket and join every room; throws LoadError when that fails or takes longer than connectTimeoutMs. */
  async connect(): Promise<void> {
    const limit = fdLimit();
    const open = openFds() ?? 0;
    const need = this.opts.clients + Math.min(this.opts.connectConcurrency, 256) + FD_HEADROOM;
    if (limit !== undefined && open + need > limit) {
      throw new LoadError('fd_limit', `${this.opts.clients} clients need about ${need} file descriptors; this process may open ${limit} (${open} in use). Lower --clients or run several load processes`);
    }
    const t0 = performance.now();
    const deadline = t0 + this.opts.connectTimeoutMs;
    const timer = setInterval(() => this.#progress('connect'), 1000);
    try {
      await pool(this.slots, this.opts.connectConcurrency, (s) => this.#open(s, deadline));
    } catch (e) {
      const states = this.#states();
      throw e instanceof LoadError ? e : new LoadError('connect_failed', `${(e as Error).message} (client states: ${JSON.stringify(states)})`, { cause: e });
    } finally {
      clearInterval(timer);
    }
    this.#connectMs = performance.now() - t0;
    this.#nodesAtStart = this.#nodes();
    const limits = this.slots[0]?.client?.welcome?.limits;
    const perPublisher = this.opts.rate / this.opts.publishers;
    if (limits && perPublisher > limits.ratePerSec * 0.8) {
      this.warnings.push(`each publisher sends ${perPublisher.toFixed(1)} msg/s; the server allows ${limits.ratePerSec} frames/s per connection: add publishers or lower the rate`);
    }
    if (this.opts.layout === 'spread' && this.opts.publishers < this.opts.rooms) this.warnings.push(`${this.opts.rooms - this.opts.publishers} rooms have no publisher (publishers < rooms)`);
  }

  async #open(s: LoadSlot, deadline: number): Promise<void> {
    const left = () => Math.max(1, Math.ceil(deadline - performance.now())); // AbortSignal.timeout takes integers only
    let token: string;
    try {
      const res = await fetch(new URL('/api/session', s.home.replace(/^ws/, 'http')), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ handle: s.handle }),
        signal: AbortSignal.timeout(Math.min(15_000, left())),
      });
      const body = (await res.json().catch(() => ({}))) as { token?: string; code?: string; message?: string };
      if (res.status !== 200 || typeof body.token !== 'string') throw new Error(`HTTP ${res.status} ${body.code ?? ''} ${body.message ?? ''}`.trim());
      token = body.token;
    } catch (e) {
      const why = [(e as Error).message, ((e as Error).cause as Error | undefined)?.message].filter(Boolean).join(': ');
      throw new LoadError('session_failed', `POST ${s.home}/api/session for ${s.handle}: ${why}`, { cause: e });
    }
    const urls = this.opts.urls;
    // home first, then the others in an order that differs between clients, so a dead gateway's clients spread out
    const others = urls.filter((_, k) => k !== s.index % urls.length);
    if (Math.floor(s.index / urls.length) % 2 === 1) others.reverse();
    const client = new ConfabClient({
      backoff: { minMs: 500, maxMs: 5000 },
      ...this.opts.client,
      ...(this.opts.fallbackEvery && s.index % this.opts.fallbackEvery === 0 ? { transport: 'fallback' as const } : {}),
      url: [s.home, ...others],
      token,
      WebSocket: socketFor(s),
      storage: new MemoryStorage(),
      namespace: s.handle,
      watchNetwork: false,
    });
    s.client = client;
    client.on('message', (m) => {
      if (m.room === s.room) this.tracker.deliver(s.member, m, performance.now());
    });
    client.on('gap', (g) => {
      if (g.room === s.room) this.tracker.gap(s.member);
    });
    client.on('state', (c) => {
      if (this.#closing) return;
      if (c.state === 'connected') {
        s.node = c.node;
        if (s.downAt !== undefined) s.upAt = performance.now();
      }
      if (c.prev === 'connected' && c.state !== 'connected' && s.downAt === undefined) {
        s.downAt = performance.now();
        s.downFrom = s.node;
      }
    });
    client.on('joined', () => {
      if (s.downAt === undefined || this.#closing || !client.ready) return;
      const now = performance.now();
      this.reconnects.push({ client: s.index, from: s.downFrom, to: s.node, ms: now - s.downAt, connectedMs: (s.upAt ?? now) - s.downAt });
      s.downAt = s.downFrom = s.upAt = undefined;
    });
    client.on('error', (e: ClientError) => {
      if (!this.#closing) this.clientErrors[e.code] = (this.clientErrors[e.code] ?? 0) + 1;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let offState: (() => void) | undefined;
    const refused = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LoadError('connect_failed', `client ${s.index} (${s.handle}) on ${s.home} not joined to ${s.room} in time; state ${client.state}${s.socketError ? `, last socket error: ${s.socketError}` : ''}`)), left());
      // a 4xx at upgrade will not heal by itself during setup: fail at once, saying why
      offState = client.on('state', (c) => {
        const status = /Unexpected server response: (4\d\d)/.exec(s.socketError ?? '')?.[1];
        if ((c.state === 'reconnecting' || c.state === 'closed') && status) {
          reject(new LoadError('connect_failed', `client ${s.index} (${s.handle}): upgrade refused with HTTP ${status} by one of ${this.opts.urls.join(', ')}${UPGRADE_HINTS[status] ? `: ${UPGRADE_HINTS[status]}` : ''}`));
        }
      });
    });
    client.connect();
    try {
      await Promise.race([client.join(s.room), refused]);
    } finally {
      clearTimeout(timer);
      offState?.();
    }
  }

  /** Publish at the fixed rate for the duration (or until the signal aborts), then wait for the tail (bounded by tailMs). */
  async send(): Promise<void> {
    const { rate, durationMs, publishers, payloadBytes, signal } = this.opts;
    const total = Math.max(1, Math.round((rate * durationMs) / 1000));
    const interval = 1000 / rate;
    const t0 = performance.now();
    this.#progress('send');
    const progress = setInterval(() => this.#progress(this.#sendMs ? 'tail' : 'send'), 1000);
    try {
      let k = 0;
      await new Promise<void>((resolve) => {
        const tick = () => {
          const now = performance.now();
          while (k < total && t0 + k * interval <= now && !signal?.aborted) {
            this.#publish(this.slots[k % publishers]!, t0 + k * interval, payloadBytes);
            k++;
          }
          if (k >= total || signal?.aborted) return resolve();
          setTimeout(tick, Math.max(1, Math.min(t0 + k * interval - now, 50)));
        };
        tick();
      });
      this.#sendMs = Math.max(performance.now() - t0, k * interval);
      const tailStart = performance.now();
      const tailEnd = tailStart + this.opts.tailMs;
      while (performance.now() < tailEnd && !(this.tracker.inflight === 0 && this.tracker.missing === 0 && this.#allBack())) {
        await new Promise((r) => setTimeout(r, 20));
      }
      this.#drained = this.tracker.inflight === 0 && this.tracker.missing === 0;
      this.#tailMs = performance.now() - tailStart;
      this.#progress('tail');
    } finally {
      clearInterval(progress);
    }
  }

  #publish(s: LoadSlot, sched: number, bytes: number): void {
    const seq = this.tracker.schedule(s.room, sched);
    s.client!.send(s.room, encodePayload(this.run, seq, bytes)).then(
      (ack) => this.tracker.ack(s.room, seq, ack.offset, ack.dup),
      (e: ClientError) => {
        if (!this.#closing && e.code !== 'closed') this.tracker.refuse(s.room, seq, e.code);
      },
    );
  }

  #allBack(): boolean {
    return this.slots.every((s) => s.downAt === undefined);
  }

  #states(): Partial<Record<ConnectionState, number>> {
    const out: Partial<Record<ConnectionState, number>> = {};
    for (const s of this.slots) {
      const st = s.client?.state ?? 'idle';
      out[st] = (out[st] ?? 0) + 1;
    }
    return out;
  }

  #nodes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.slots) if (s.client?.state === 'connected' && s.node) out[s.node] = (out[s.node] ?? 0) + 1;
    return out;
  }

  #progress(phase: LoadProgress['phase']): void {
    this.opts.onProgress?.({
      phase,
      elapsedMs: performance.now() - this.#started,
      connected: this.slots.filter((s) => s.client?.state === 'connected').length,
      scheduled: this.tracker.scheduled,
      acked: this.tracker.acked,
      delivered: this.tracker.delivered,
      missing: this.tracker.missing,
      reconnecting: this.slots.filter((s) => s.downAt !== undefined).length,
    });
  }

  /** The figures of the run so far (call after send()). */
  report(): LoadReport {
    const t = this.tracker;
    const lat = t.latency;
    const us = (q: number) => lat.percentile(q) / 1000;
    const rec = this.reconnects.map((r) => r.ms).sort((a, b) => a - b);
    const perRoom = t.summaries();
    let expected = 0;
    for (const r of t.rooms.values()) expected += r.ackCount * r.members;
    const lost = perRoom.reduce((a, r) => a + r.lost, 0);
    const o = this.opts;
    return {
      run: this.run,
      urls: o.urls,
      clients: o.clients,
      rooms: o.layout === 'one' ? 1 : o.rooms,
      publishers: o.publishers,
      rate: o.rate,
      payloadBytes: o.payloadBytes,
      connectMs: Math.round(this.#connectMs),
      sendMs: Math.round(this.#sendMs),
      tailMs: Math.round(this.#tailMs),
      drained: this.#drained,
      scheduled: t.scheduled,
      acked: t.acked,
      dupAcks: t.dupAcks,
      refused: { ...t.refusedByCode },
      unacked: t.inflight,
      expected,
      delivered: t.delivered,
      deliveredPerSec: this.#sendMs > 0 ? Math.round((t.delivered / (this.#sendMs + this.#tailMs)) * 1000) : 0,
      lost,
      duplicates: t.duplicates,
      orderViolations: t.orderViolations,
      offsetMismatches: t.offsetMismatches,
      gaps: t.sdkGaps + t.prevHoles,
      sdkGaps: t.sdkGaps,
      prevHoles: t.prevHoles,
      foreign: t.foreign,
      latencyMs: { count: lat.total, p50: us(50), p99: us(99), p999: us(99.9), max: lat.max / 1000, mean: lat.total ? lat.sum / lat.total / 1000 : NaN },
      reconnects: { ...percentiles(rec), samples: [...this.reconnects] },
      notBack: this.slots.filter((s) => s.downAt !== undefined || s.client?.state !== 'connected').length,
      states: this.#states(),
      nodesAtStart: this.#nodesAtStart,
      nodesAtEnd: this.#nodes(),
      clientErrors: { ...this.clientErrors },
      warnings: [...this.warnings],
      perRoom,
      ok: lost === 0 && t.duplicates === 0 && t.orderViolations === 0 && t.offsetMismatches === 0,
    };
  }

  /** Close every client (queued messages are abandoned; nothing reconnects). */
  close(): void {
    this.#closing = true;
    for (const s of this.slots) s.client?.close();
  }
}

/** Connect, send, wait for the tail, report, close: one bounded run. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const g = new LoadGenerator(options);
  try {
    await g.connect();
    await g.send();
    return g.report();
  } finally {
    g.close();
  }
}
