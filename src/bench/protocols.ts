/**
 * The three wire protocols the load generator speaks, each written directly
 * over {@link WireSocket}:
 *  - `raw`: the raw `ws` broadcast baseline. Rooms in the query string, the
 *    server says `ready`; a publish is the text `room\npayload`.
 *  - `sio`: Engine.IO v4 / Socket.IO v5 over WebSocket only
 *    (`/socket.io/?EIO=4&transport=websocket`): `0{…}` open, `40{auth}`
 *    connect, `42[…]` events, `2`/`3` ping/pong, and connection-state
 *    recovery (`40{"pid","offset"}`) for the resume scenario.
 *  - `confab`: confab protocol v1 (`/ws?token=…`, subprotocol `confab.v1`,
 *    `welcome`, `join`/`joined` with `since`, `pub`, `msg`, `ack`).
 *
 * Bench payloads look like `B|step|pub|seq|usec|pad…` and are found in any
 * frame by their marker, so counting does not depend on the protocol.
 */
import type { WireSocket } from './wire.js';

export type SystemKind = 'raw' | 'sio' | 'confab';

/** One simulated client in the load generator. */
export interface BenchClient {
  idx: number;
  rooms: string[];
  /** 'recv' counts deliveries; 'pub' only publishes; 'both' does both. */
  role: 'recv' | 'pub' | 'both';
  /** Server port when not the default one (bus hop: half the clients on a second gateway). */
  port?: number;
  ws: WireSocket | null;
  ready: boolean;
  /** Excluded from latency/loss accounting (slow consumers). */
  excluded: boolean;
  /** Resolves the current connect attempt: true when subscribed. */
  onReady: ((ok: boolean, why?: string) => void) | null;
  // per-step accounting
  stepId: number;
  last: Map<number, number> | null;
  // confab state
  token?: string;
  pendingJoins: number;
  epoch?: string;
  offset?: number;
  gaps: number;
  // socket.io state
  pid?: string;
  sioOffset?: string;
  recovered?: boolean;
}

export interface Protocol {
  kind: SystemKind;
  path(c: BenchClient): string;
  headers(c: BenchClient): string;
  /** Called after the upgrade. */
  open(c: BenchClient): void;
  /** A frame that carries no bench payload. */
  control(c: BenchClient, buf: Buffer, start: number, end: number): void;
  /** Called for every bench payload frame before it is counted (state tracking). */
  onBench(c: BenchClient, buf: Buffer, start: number, end: number): void;
  /** Text of a publish frame. */
  pub(room: string, text: string, id: string): string;
  /**
   * Text of a frame the server answers in order, so the publisher knows its
   * earlier publishes were processed (answers bump {@link syncSeen}); null when
   * every publish is acknowledged instead (confab's `ack` bumps it).
   */
  sync(): string | null;
}

/** Settle the client's pending connect attempt. */
export function ready(c: BenchClient, ok: boolean, why?: string): void {
  c.ready = ok;
  const f = c.onReady;
  c.onReady = null;
  if (f) f(ok, why);
}

const READY = Buffer.from('ready');

export const rawProtocol: Protocol = {
  kind: 'raw',
  path: (c) => `/?rooms=${encodeURIComponent(c.rooms.join(','))}`,
  headers: () => '',
  open() {},
  control(c, buf, s, e) {
    if (e - s === 5 && buf.compare(READY, 0, 5, s, e) === 0) ready(c, true);
    else if (buf.toString('latin1', s, e) === 'synced') syncSeen++;
  },
  onBench() {},
  pub: (room, text) => `${room}\n${text}`,
  sync: () => 'sync',
};

/** Count of sync replies seen (publisher side); read by the load generator. */
export let syncSeen = 0;
export function resetSyncSeen(): void {
  syncSeen = 0;
}

export const sioProtocol: Protocol = {
  kind: 'sio',
  path: () => '/socket.io/?EIO=4&transport=websocket',
  headers: () => '',
  open() {},
  control(c, buf, s, e) {
    const t0 = buf[s];
    if (t0 === 0x32 /* '2' ping */ && e - s === 1) {
      c.ws?.sendText('3');
      return;
    }
    const text = buf.toString('utf8', s, e);
    if (t0 === 0x30 /* '0' open */) {
      const auth: Record<string, unknown> = { rooms: c.rooms };
      if (c.pid) {
        auth.pid = c.pid;
        if (c.sioOffset) auth.offset = c.sioOffset;
      }
      c.ws?.sendText(`40${JSON.stringify(auth)}`);
    } else if (text.startsWith('40')) {
      try {
        const j = JSON.parse(text.slice(2)) as { pid?: string };
        c.recovered = !!c.pid && j.pid === c.pid;
        if (j.pid) c.pid = j.pid;
      } catch {
        /* ignore */
      }
    } else if (text.startsWith('44')) {
      ready(c, false, `connect_error ${text.slice(2, 200)}`);
    } else if (text.startsWith('42["ready"')) {
      ready(c, true);
    } else if (text.startsWith('42["synced"')) {
      syncSeen++;
    }
  },
  onBench(c, buf, s, e) {
    // with recovery on, the packet ends with ,"<offset>"]
    if (buf[e - 1] !== 0x5d || buf[e - 2] !== 0x22) return;
    let i = e - 3;
    while (i > s && buf[i] !== 0x22) i--;
    if (buf[i - 1] === 0x2c) c.sioOffset = buf.toString('latin1', i + 1, e - 2);
  },
  pub: (room, text) => `42${JSON.stringify(['pub', room, text])}`,
  sync: () => '42["sync"]',
};

const OFFSET = Buffer.from('"offset":');

export const confabProtocol: Protocol = {
  kind: 'confab',
  // CONFAB_BENCH_ECHO=0: clients open /ws?echo=0 (a sender gets its ack, not its own message back)
  path: (c) => `/ws?token=${encodeURIComponent(c.token ?? '')}${process.env.CONFAB_BENCH_ECHO === '0' ? '&echo=0' : ''}`,
  headers: () => 'Sec-WebSocket-Protocol: confab.v1\r\n',
  open() {},
  control(c, buf, s, e) {
    let f: { t?: string; room?: string; epoch?: string; last?: number; gap?: unknown; code?: string; message?: string };
    try {
      f = JSON.parse(buf.toString('utf8', s, e)) as typeof f;
    } catch {
      return;
    }
    switch (f.t) {
      case 'welcome': {
        c.pendingJoins = c.rooms.length;
        if (c.pendingJoins === 0) ready(c, true);
        for (const room of c.rooms) {
          const since = c.epoch !== undefined && c.offset !== undefined ? { epoch: c.epoch, offset: c.offset } : undefined;
          c.ws?.sendText(JSON.stringify(since ? { t: 'join', room, since } : { t: 'join', room }));
        }
        break;
      }
      case 'joined':
        if (f.gap) c.gaps++;
        if (c.rooms.length === 1) {
          if (c.epoch !== f.epoch || c.offset === undefined) c.offset = f.last;
          c.epoch = f.epoch;
        }
        if (--c.pendingJoins === 0) ready(c, true);
        break;
      case 'ack':
        syncSeen++;
        break;
      case 'error':
        if (!c.ready) ready(c, false, `error ${f.code}: ${f.message}`);
        else errorsSeen++;
        break;
      default:
        break;
    }
  },
  onBench(c, buf, s, e) {
    if (c.rooms.length !== 1) return;
    const i = buf.indexOf(OFFSET, s);
    if (i < 0 || i >= e) return;
    let n = 0;
    for (let k = i + 9; k < e; k++) {
      const ch = buf[k]!;
      if (ch < 48 || ch > 57) break;
      n = n * 10 + (ch - 48);
    }
    c.offset = n;
  },
  pub: (room, text, id) => JSON.stringify({ t: 'pub', id, room, text }),
  sync: () => null,
};

/** confab `error` frames seen after setup (rate limits, refused publishes). */
export let errorsSeen = 0;
export function resetErrorsSeen(): void {
  errorsSeen = 0;
}

export function protocolFor(kind: SystemKind): Protocol {
  return kind === 'raw' ? rawProtocol : kind === 'sio' ? sioProtocol : confabProtocol;
}
