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
  onError?(err: unknown): void;
}

/** Subject of the usage reports between nodes. */
export const USAGE_SUBJECT = Subjects.usage;
/** Reports hold at most this many users per bus message (~40 bytes each: well under NATS's 1 MiB max_payload). */
export const USAGE_CHUNK = 2000;

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
  /** Bytes of usage reports this node sent (metrics, the cost measurement). */
  bytesSent = 0;
  reportsSent = 0;

  constructor(private readonly o: UserLimitOptions) {
    const perInterval = (k: UsageKind) => (o.rates[k].perSec * o.gossipMs) / 1000;
    this.threshold = { msg: Math.max(1, Math.floor(perInterval('msg') / 4)), alert: 1, typing: Math.max(1, Math.floor(perInterval('typing') / 4)) };
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

  /** A new socket of `user`: false when the user holds its maximum here. */
  openSocket(user: string): boolean {
    const s = this.state(user);
    if (s.sockets >= this.o.maxSocketsPerUser) return false;
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

  /** Report this interval's heavy usage and forget users with nothing left to remember. */
  tick(now = Date.now()): void {
    const entries: string[] = [];
    for (const [user, s] of this.users) {
      const u = s.used;
      if (u.msg >= this.threshold.msg || u.alert >= this.threshold.alert || u.typing >= this.threshold.typing) entries.push(JSON.stringify([user, u.msg, u.alert, u.typing]));
      u.msg = u.alert = u.typing = 0;
      if (s.sockets === 0 && s.rooms.size === 0 && KINDS.every((k) => s.buckets[k].full(now))) this.users.delete(user);
    }
    if (!this.o.bus || this.o.bus.status !== 'up') return;
    for (let i = 0; i < entries.length; i += USAGE_CHUNK) {
      const data = sealEnvelope({ kind: 'usage', origin: this.o.node }, `[${entries.slice(i, i + USAGE_CHUNK).join(',')}]`);
      try {
        this.o.bus.publish(USAGE_SUBJECT, data);
        this.bytesSent += data.length;
        this.reportsSent++;
      } catch (err) {
        this.o.onError?.(err); // the bus went down meanwhile: this interval's report is lost (within the bound)
      }
    }
  }

  private onReport(data: Uint8Array): void {
    try {
      const e = openEnvelope(data);
      if (!e || e.header.kind !== 'usage' || e.header.origin === this.o.node) return;
      const rows = JSON.parse(e.body) as unknown;
      if (!Array.isArray(rows)) return;
      const now = Date.now();
      for (const row of rows) {
        if (!Array.isArray(row) || typeof row[0] !== 'string') continue;
        const st = this.users.get(row[0]);
        if (!st) continue; // not here: nothing to hold back
        KINDS.forEach((k, i) => {
          const n = Number(row[i + 1]);
          if (Number.isFinite(n) && n > 0) st.buckets[k].debit(n, now);
        });
      }
    } catch (err) {
      this.o.onError?.(err);
    }
  }
}
