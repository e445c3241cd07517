/**
 * An abuse client for the abuse suite and the "under abuse" bench (issue 11): groups of users, each
 * with some sockets, each socket at a steady frame rate within the per-connection limits, cycling
 * through a mix of frames: 2,000-character messages into its rooms, resumes from offset 0 (full
 * replays), `history` pages, typing, alerts, or nothing at all (silent sockets). It counts what it
 * sent, what was accepted, every refusal by code and every close by code; it keeps no frames.
 *
 * `spawnAttacker` runs it in a child process of its own (`attacker-main.ts`), so the work of reading
 * the attacker's deliveries does not slow the canary that measures the node.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../protocol/frames.js';
import { createSession } from './gateway.js';

export type AttackAction = 'pub' | 'replay' | 'history' | 'typing' | 'alert' | 'idle';

export interface AttackGroup {
  /** Users of this group (fresh sessions), each with `sockets` sockets. */
  users: number;
  sockets: number;
  /** Distinct rooms each user tries to join (spread over its sockets; every socket joins all of them up to `roomsPerSocket`). */
  rooms: number;
  /** Rooms each socket joins (default: all of the user's). */
  roomsPerSocket?: number;
  /** Frames per second per socket (keep below the per-connection rate). */
  rate: number;
  /** Frames cycled through after the joins, in order. */
  mix: AttackAction[];
  /** Characters of each message (default 2,000). */
  textChars?: number;
  /** Stop reading from the socket (the server's send buffer fills: a slow consumer). */
  slowReader?: boolean;
  /** Room name prefix (default `atk`); rooms are `${prefix}${group}-${user}-${r}`. */
  prefix?: string;
  /** Use the rooms of this (earlier) group instead (all of its users' rooms, each socket from its own start). */
  roomsOf?: number;
  /** Every user of the group shares the same `rooms` rooms (`${prefix}${group}-${r}`): deliveries fan out to all of them. */
  sharedRooms?: boolean;
}

export interface AttackPlan {
  url: string;
  wsUrl: string;
  durationMs: number;
  groups: AttackGroup[];
}

export interface AttackResult {
  sockets: number;
  socketsRefused: Record<string, number>;
  sent: number;
  acked: number;
  received: number;
  receivedBytes: number;
  refused: Record<string, number>;
  closes: Record<string, number>;
  /** Rooms the attacker got joined (distinct). */
  roomsJoined: number;
}

interface Sock {
  ws: WebSocket;
  g: AttackGroup;
  gi: number;
  rooms: string[];
  epochs: Map<string, string>;
  joinsSent: number;
  step: number;
  credit: number;
  open: boolean;
}

const inc = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);

function openSocket(wsUrl: string, token: string): Promise<WebSocket | { status: number }> {
  return new Promise((res) => {
    const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`, [SUBPROTOCOL]);
    ws.on('error', () => res({ status: -1 }));
    ws.once('unexpected-response', (_req, r) => {
      res({ status: r.statusCode ?? 0 });
      r.resume();
      ws.terminate();
    });
    ws.once('open', () => res(ws));
  });
}

/** The rooms of group `gi`'s user `u` (every user's when `u` is undefined). */
function roomsOf(groups: AttackGroup[], gi: number, u: number | undefined): string[] {
  const g = groups[gi]!;
  if (g.sharedRooms) return Array.from({ length: g.rooms }, (_, k) => `${g.prefix ?? 'atk'}${gi}-${k}`);
  const users = u === undefined ? Array.from({ length: g.users }, (_, i) => i) : [u];
  return users.flatMap((x) => Array.from({ length: g.rooms }, (_, k) => `${g.prefix ?? 'atk'}${gi}-${x}-${k}`));
}

/**
 * Run the plan in this process; resolves when `durationMs` has passed and every socket is closed.
 * `onStart` is called once every socket is open, when the `durationMs` of frames begins.
 */
export async function runAttack(plan: AttackPlan, onStart?: () => void): Promise<AttackResult> {
  const r: AttackResult = { sockets: 0, socketsRefused: {}, sent: 0, acked: 0, received: 0, receivedBytes: 0, refused: {}, closes: {}, roomsJoined: 0 };
  const joined = new Set<string>();
  const socks: Sock[] = [];
  const tag = Math.floor(Math.random() * 1e6).toString(36);
  for (const [gi, g] of plan.groups.entries()) {
    for (let u = 0; u < g.users; u++) {
      const s = await createSession(plan.url, `atk${tag}g${gi}u${u}`);
      const rooms = roomsOf(plan.groups, g.roomsOf ?? gi, g.roomsOf === undefined ? u : undefined);
      for (let k = 0; k < g.sockets; k++) {
        const ws = await openSocket(plan.wsUrl, s.token);
        if (!(ws instanceof WebSocket)) {
          inc(r.socketsRefused, String(ws.status));
          continue;
        }
        r.sockets++;
        const per = g.roomsPerSocket ?? rooms.length;
        const mine = Array.from({ length: Math.min(per, rooms.length) }, (_, j) => rooms[(k * per + j) % rooms.length]!);
        const sock: Sock = { ws, g, gi, rooms: mine, epochs: new Map(), joinsSent: 0, step: 0, credit: 0, open: true };
        socks.push(sock);
        ws.on('message', (d: Buffer) => {
          r.received++;
          r.receivedBytes += d.length;
          if (d.length > 400) return; // a message or a page: nothing to count
          const f = JSON.parse(d.toString()) as { t: string; code?: string; room?: string; epoch?: string };
          if (f.t === 'ack') r.acked++;
          else if (f.t === 'error') inc(r.refused, f.code ?? '?');
          else if (f.t === 'joined' && f.room) {
            joined.add(f.room);
            if (f.epoch) sock.epochs.set(f.room, f.epoch);
          }
        });
        ws.on('close', (code) => {
          sock.open = false;
          inc(r.closes, String(code));
        });
        if (g.slowReader) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      }
    }
  }
  const text = (n: number) => 'x'.repeat(n);
  const texts = new Map<number, string>();
  let n = 0;
  const TICK = 50;
  onStart?.();
  const timer = setInterval(() => {
    for (const s of socks) {
      if (!s.open) continue;
      s.credit += (s.g.rate * TICK) / 1000;
      while (s.credit >= 1) {
        s.credit -= 1;
        const frame = nextFrame(s);
        if (!frame) continue;
        s.ws.send(JSON.stringify(frame));
        r.sent++;
      }
    }
  }, TICK);
  function nextFrame(s: Sock): Record<string, unknown> | undefined {
    if (s.joinsSent < s.rooms.length) return { t: 'join', room: s.rooms[s.joinsSent++] };
    const action = s.g.mix[s.step++ % s.g.mix.length];
    const room = s.rooms[s.step % Math.max(1, s.rooms.length)];
    const id = `k${n++}`;
    switch (action) {
      case 'pub': {
        const chars = s.g.textChars ?? 2000;
        let t = texts.get(chars);
        if (t === undefined) texts.set(chars, (t = text(chars)));
        return room ? { t: 'pub', id, room, text: t } : undefined;
      }
      case 'replay':
        return room ? { t: 'join', room, since: { epoch: s.epochs.get(room) ?? '', offset: 0 } } : undefined;
      case 'history':
        return room ? { t: 'history', room, before: 1e9, limit: 200 } : undefined;
      case 'typing':
        return room ? { t: 'typing', room } : undefined;
      case 'alert':
        return { t: 'alert', id, text: 'alert' };
      default:
        return undefined;
    }
  }
  await new Promise((res) => setTimeout(res, plan.durationMs));
  clearInterval(timer);
  await Promise.all(
    socks.map(
      (s) =>
        new Promise<void>((res) => {
          if (!s.open) return res();
          s.ws.once('close', () => res());
          s.ws.terminate();
        }),
    ),
  );
  r.roomsJoined = joined.size;
  return r;
}

/**
 * The attacker as a child process (`attacker-main`, compiled or through tsx like the running code);
 * resolves with its result. `prefix`: a command to run it under (the bench pins it: `taskset -c 1`);
 * `onStart`: called when its sockets are open and the frames begin (its `ready` line).
 */
export function spawnAttacker(plan: AttackPlan, opts: { prefix?: string[]; onStart?: () => void } = {}): Promise<AttackResult> {
  const prefix = opts.prefix ?? [];
  const here = dirname(fileURLToPath(import.meta.url));
  const ts = import.meta.url.endsWith('.ts');
  const entry = join(here, ts ? 'attacker-main.ts' : 'attacker-main.js');
  const args = ts ? ['--import', 'tsx', entry] : [entry];
  return new Promise((res, rej) => {
    const [cmd, ...rest] = [...prefix, process.execPath, ...args];
    const child = spawn(cmd!, rest, { cwd: resolve(here, '../..'), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      const before = out;
      out += d.toString();
      if (!/^ready$/m.test(before) && /^ready$/m.test(out)) opts.onStart?.();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', rej);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) res(JSON.parse(line) as AttackResult);
      else rej(new Error(`attacker exited ${code}: ${err.slice(-2000)}`));
    });
    child.stdin.end(JSON.stringify(plan));
  });
}
