/**
 * Per-user limits (G11): a user is the session's user id, whatever number of sockets it opens.
 * On a node: sockets per user, distinct rooms per user (across its sockets), distinct rooms per
 * node, and one token bucket per user and kind (messages, alerts, typing) shared by all of the
 * user's sockets here. Across nodes: every node tells the others, over the bus (`ctl.usage`), what
 * each heavy user consumed since its last report (compact periodic deltas); a node debits those
 * from its own bucket for that user, so the user's total across nodes converges to the same rate.
 *
 * Error bound (documented in docs/limits.md): over any window of T seconds, what a user on k nodes
 * gets accepted of one kind is at most rate·T + k·burst + (k−1)·rate·(interval + bus delay) plus,
 * per node and interval, the report threshold (usage below it is not reported).
 *
 * Sockets and distinct rooms per user are held across nodes the same way: a node reports, every
 * interval, what each user holding at least an eighth of a cap holds there (its socket count and a
 * 32-bit hash of each room), and a node refuses a socket or a new room when what the user holds here
 * plus what the others reported reaches the cap. Reports are snapshots: one that is not renewed
 * within three intervals (a node gone) is forgotten; a user who falls below the threshold is
 * reported once more with nothing.
 */
import { openEnvelope, sealEnvelope } from '../bus/envelope.js';
import { Subjects, type Bus, type BusSubscription } from '../bus/types.js';

export type UsageKind = 'msg' | 'alert' | 'typing';
const KINDS: readonly UsageKind[] = ['msg', 'alert', 'typing'];

export interface Rate {
  /** Tokens per second. */
  perSec: number;
  burst: number;
}

export interface UserLimitOptions {
  node: string;
  maxSocketsPerUser: number;
  maxRoomsPerUser: number;
  maxRoomsPerNode: number;
  rates: Record<UsageKind, Rate>;
  /** How often usage is reported to the other nodes (0: never; a single node). */
  gossipMs: number;
  bus?: Bus;
  /** A usage report this node could not send (`send`) or could not read (`receive`). */
  onError?(err: unknown, where: 'send' | 'receive'): void;
}

/** Subject of the usage reports between nodes. */
export const USAGE_SUBJECT = Subjects.usage;
/** Reports hold at most this many users per bus message (~40 bytes each: well under NATS's 1 MiB max_payload). */
export const USAGE_CHUNK = 2000;
/** ... and at most this many bytes of rows (holdings carry room hashes, ~8 bytes a room). */
export const USAGE_CHUNK_BYTES = 256 * 1024;
/** A node's report of a user's holdings is forgotten after this many intervals without a new one. */
const HOLDING_TTL_INTERVALS = 3;

/** FNV-1a, 32 bits, base 36: how a room travels in a holding report. */
export function roomHash(room: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) {
    h ^= room.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** What another node reported a user holds there. */
interface Holding {
  sockets: number;
  rooms: Set<string>;
  at: number;
}

/**
 * A token bucket that other nodes' usage can drive below zero (down to -burst): the user then
 * waits here too until the debt is refilled.
 */
export class DebitBucket {
  private tokens: number;
  private at: number;
  constructor(private readonly rate: Rate, now = Date.now()) {
    this.tokens = rate.burst;
    this.at = now;
  }
  private refill(now: number): void {
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.at) / 1000) * this.rate.perSec);
    this.at = now;
  }
  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  debit(n: number, now = Date.now()): void {
    this.refill(now);
    this.tokens = Math.max(-this.rate.burst, this.tokens - n);
  }
  /** True once the bucket is full again (its state can be forgotten). */
  full(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.rate.burst;
  }
}

interface UserState {
  sockets: number;
  /** Rooms joined by any socket of the user here, with the number of its sockets in each. */
  rooms: Map<string, number>;
  buckets: Record<UsageKind, DebitBucket>;
  /** Accepted since the last report. */
  used: Record<UsageKind, number>;
}

export type RoomRefusal = { code: 'too_many_rooms' | 'node_full'; message: string };

export class UserLimits {
  private readonly users = new Map<string, UserState>();
  /** Rooms with at least one member on this node (counted here, not in the hub), with their member count. */
  private readonly nodeRooms = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private sub: BusSubscription | undefined;
  /** Report only usage at or above this per interval (keeps light users off the bus). */
  private readonly threshold: Record<UsageKind, number>;
  /** Report holdings only of users with at least this many sockets or rooms here. */
  private readonly holdThreshold: { sockets: number; rooms: number };
  /** What other nodes reported users hold there: user → node → holding. */
  private readonly remote = new Map<string, Map<string, Holding>>();
  /** Users whose holdings this node reported in its last report (reported once more when they fall below the threshold). */
  private reportedHold = new Set<string>();
  /** Bytes of usage reports this node sent (metrics, the cost measurement). */
  bytesSent = 0;
  reportsSent = 0;

  constructor(private readonly o: UserLimitOptions) {
    const perInterval = (k: UsageKind) => (o.rates[k].perSec * o.gossipMs) / 1000;
    this.threshold = { msg: Math.max(1, Math.floor(perInterval('msg') / 4)), alert: 1, typing: Math.max(1, Math.floor(perInterval('typing') / 4)) };
    this.holdThreshold = { sockets: Math.max(2, Math.ceil(o.maxSocketsPerUser / 8)), rooms: Math.max(2, Math.ceil(o.maxRoomsPerUser / 8)) };
  }

  start(): void {
    if (!this.o.bus || this.o.gossipMs <= 0 || this.timer) return;
    this.sub = this.o.bus.subscribe(USAGE_SUBJECT, (d) => this.onReport(d));
    this.timer = setInterval(() => this.tick(), this.o.gossipMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private state(user: string): UserState {
    let s = this.users.get(user);
    if (!s) {
      const now = Date.now();
      const r = this.o.rates;
      s = {
        sockets: 0,
        rooms: new Map(),
        buckets: { msg: new DebitBucket(r.msg, now), alert: new DebitBucket(r.alert, now), typing: new DebitBucket(r.typing, now) },
        used: { msg: 0, alert: 0, typing: 0 },
      };
      this.users.set(user, s);
    }
    return s;
  }

  /** A new socket of `user`: false when the user holds its maximum here and on the nodes that reported it. */
  openSocket(user: string): boolean {
    const s = this.state(user);
    if (s.sockets + this.remoteSockets(user) >= this.o.maxSocketsPerUser) return false;
    s.sockets++;
    return true;
  }

  closeSocket(user: string): void {
    const s = this.users.get(user);
    if (s) s.sockets = Math.max(0, s.sockets - 1);
  }

  /** Sockets of `user` on this node. */
  socketsOf(user: string): number {
    return this.users.get(user)?.sockets ?? 0;
  }

  /** Sockets other nodes reported `user` holds there (expired reports not counted). */
  remoteSockets(user: string, now = Date.now()): number {
    let n = 0;
    for (const h of this.live(user, now)) n += h.sockets;
    return n;
  }

  /** Distinct rooms other nodes reported `user` holds there and this node does not (as hashes). */
  remoteRooms(user: string, now = Date.now()): Set<string> {
    const out = new Set<string>();
    const mine = this.users.get(user)?.rooms;
    const local = mine && mine.size > 0 ? new Set([...mine.keys()].map(roomHash)) : undefined;
    for (const h of this.live(user, now)) for (const r of h.rooms) if (!local?.has(r)) out.add(r);
    return out;
  }

  /** Forget holdings that were not renewed in time (their node is gone or stopped reporting). */
  private expire(now: number): void {
    const ttl = HOLDING_TTL_INTERVALS * this.o.gossipMs;
    for (const [user, by] of this.remote) {
      for (const [node, h] of by) if (now - h.at > ttl) by.delete(node);
      if (by.size === 0) this.remote.delete(user);
    }
  }

  private *live(user: string, now: number): Iterable<Holding> {
    const by = this.remote.get(user);
    if (!by) return;
    const ttl = HOLDING_TTL_INTERVALS * this.o.gossipMs;
    for (const [node, h] of by) {
      if (now - h.at > ttl) by.delete(node);
      else yield h;
    }
    if (by.size === 0) this.remote.delete(user);
  }

  /** Distinct rooms with members on this node. */
  get roomCount(): number {
    return this.nodeRooms.size;
  }

  /**
   * One socket of `user` joins `room` (not yet a member on that socket): a refusal when the user's
   * distinct rooms or the node's distinct rooms are at their maximum and the room is new to them.
   * Each admitted join is released once by `leaveRoom`.
   */
  joinRoom(user: string, room: string): RoomRefusal | undefined {
    const s = this.state(user);
    const mine = s.rooms.get(room);
    if (mine === undefined && s.rooms.size >= this.o.maxRoomsPerUser) {
      return { code: 'too_many_rooms', message: `at most ${this.o.maxRoomsPerUser} rooms per user across its connections` };
    }
    if (mine === undefined && this.remote.has(user)) {
      const elsewhere = this.remoteRooms(user);
      if (!elsewhere.has(roomHash(room)) && s.rooms.size + elsewhere.size >= this.o.maxRoomsPerUser) {
        return { code: 'too_many_rooms', message: `at most ${this.o.maxRoomsPerUser} rooms per user across its connections and nodes` };
      }
    }
    const here = this.nodeRooms.get(room);
    if (here === undefined && this.nodeRooms.size >= this.o.maxRoomsPerNode) {
      return { code: 'node_full', message: `this node holds its maximum of ${this.o.maxRoomsPerNode} rooms; try again later` };
    }
    s.rooms.set(room, (mine ?? 0) + 1);
    this.nodeRooms.set(room, (here ?? 0) + 1);
    return undefined;
  }

  leaveRoom(user: string, room: string): void {
    const s = this.users.get(user);
    const mine = s?.rooms.get(room);
    if (!s || mine === undefined) return;
    if (mine <= 1) s.rooms.delete(room);
    else s.rooms.set(room, mine - 1);
    const here = this.nodeRooms.get(room) ?? 1;
    if (here <= 1) this.nodeRooms.delete(room);
    else this.nodeRooms.set(room, here - 1);
  }

  /** One frame of `kind` by `user`: false when the user is over its rate (across its sockets here, and what other nodes reported). */
  take(user: string, kind: UsageKind): boolean {
    const s = this.state(user);
    if (!s.buckets[kind].take()) return false;
    s.used[kind]++;
    return true;
  }

  /** Users with state on this node (tests, metrics). */
  get userCount(): number {
    return this.users.size;
  }

  /** Report this interval's heavy usage and holdings, and forget users with nothing left to remember. */
  tick(now = Date.now()): void {
    const entries: string[] = [];
    const held = new Set<string>();
    const seen = new Set<string>();
    for (const [user, s] of this.users) {
      seen.add(user);
      const u = s.used;
      const holds = s.sockets >= this.holdThreshold.sockets || s.rooms.size >= this.holdThreshold.rooms;
      const again = !holds && this.reportedHold.has(user); // fell below: one report with nothing
      if (holds) held.add(user);
      if (holds || again) {
        const rooms = holds ? [...s.rooms.keys()].map(roomHash).join(',') : '';
        entries.push(JSON.stringify([user, u.msg, u.alert, u.typing, holds ? s.sockets : 0, rooms]));
      } else if (u.msg >= this.threshold.msg || u.alert >= this.threshold.alert || u.typing >= this.threshold.typing) {
        entries.push(JSON.stringify([user, u.msg, u.alert, u.typing]));
      }
      u.msg = u.alert = u.typing = 0;
      if (s.sockets === 0 && s.rooms.size === 0 && KINDS.every((k) => s.buckets[k].full(now))) this.users.delete(user);
    }
    for (const user of this.reportedHold) if (!seen.has(user)) entries.push(JSON.stringify([user, 0, 0, 0, 0, '']));
    this.reportedHold = held;
    this.expire(now);
    if (!this.o.bus) return;
    if (this.o.bus.status !== 'up') {
      // this interval's report is lost (within the bound): counted, as a refused publish is
      if (entries.length > 0) this.o.onError?.(new Error('the bus is down: usage report not sent'), 'send');
      return;
    }
    let i = 0;
    while (i < entries.length) {
      let bytes = 0;
      let j = i;
      while (j < entries.length && j - i < USAGE_CHUNK && (j === i || bytes + entries[j]!.length <= USAGE_CHUNK_BYTES)) bytes += entries[j++]!.length + 1;
      const data = sealEnvelope({ kind: 'usage', origin: this.o.node }, `[${entries.slice(i, j).join(',')}]`);
      i = j;
      try {
        this.o.bus.publish(USAGE_SUBJECT, data);
        this.bytesSent += data.length;
        this.reportsSent++;
      } catch (err) {
        this.o.onError?.(err, 'send'); // the bus went down meanwhile: this interval's report is lost (within the bound)
      }
    }
  }

  private onHolding(user: string, node: string, sockets: number, rooms: unknown, now: number): void {
    const hashes = typeof rooms === 'string' && rooms.length > 0 ? rooms.split(',') : [];
    let by = this.remote.get(user);
    if (!(sockets > 0) && hashes.length === 0) {
      by?.delete(node);
      if (by?.size === 0) this.remote.delete(user);
      return;
    }
    if (!by) this.remote.set(user, (by = new Map()));
    by.set(node, { sockets: Number.isFinite(sockets) && sockets > 0 ? sockets : 0, rooms: new Set(hashes), at: now });
  }

  private onReport(data: Uint8Array): void {
    try {
      const e = openEnvelope(data);
      if (!e || e.header.kind !== 'usage' || e.header.origin === this.o.node) return;
      const rows = JSON.parse(e.body) as unknown;
      if (!Array.isArray(rows)) return;
      const now = Date.now();
      const origin = e.header.origin;
      for (const row of rows) {
        if (!Array.isArray(row) || typeof row[0] !== 'string') continue;
        if (row.length >= 6 && typeof origin === 'string') this.onHolding(row[0], origin, Number(row[4]), row[5], now);
        const st = this.users.get(row[0]);
        if (!st) continue; // not here: nothing to hold back
        KINDS.forEach((k, i) => {
          const n = Number(row[i + 1]);
          if (Number.isFinite(n) && n > 0) st.buckets[k].debit(n, now);
        });
      }
    } catch (err) {
      this.o.onError?.(err, 'receive');
    }
  }
}
