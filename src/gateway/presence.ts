/**
 * Cluster-wide presence. Each node owns the (room, user) entries of its own connections and
 * tells the others of changes; every node keeps the union and turns its changes into join/leave
 * notices for its local sockets. A user who vanishes (socket closed, node drained or killed) is
 * shown as leaving only after `graceMs`, so moving to another node, a reload or a quick reconnect
 * shows nothing. An explicit `leave` is shown at once. Room '*' marks "connected at all" and is
 * never shown. (Handle ownership is not presence's: it lives in the History, src/auth/handles.ts.)
 *
 * What crosses the bus is proportional to changes, never to the population (docs/scaling.md):
 *   - changes go out as numbered delta batches (`d`, sequence `s` of incarnation `i`), at most
 *     DELTA_MAX_OPS operations / DELTA_MAX_BYTES bytes each, gathered for `batchMs`;
 *   - a heartbeat (`hb`, every `heartbeatMs`) carries only the last sequence number and the
 *     node's entry count: a receiver that missed a delta, or whose count differs, asks that node
 *     for its table (`want`, on the node's own subject, at most once per backoff);
 *   - a whole table (`state`) is sent only on request, to the asker's own subject
 *     (`ctl.presence.<token>`), in chunks of at most STATE_CHUNK entries: after `want`, and to a
 *     node that says `hello` (a newcomer, or a node whose bus came back).
 * A node with 20,000 idle users thus costs its peers one ~100-byte heartbeat per interval.
 *
 * A node that falls silent is dropped (its users shown leaving, after the grace) only while the
 * bus demonstrably works: this node hears its own heartbeats come back. While it does not (bus
 * down, frozen or partitioned broker), remote presence is held as it was, marked stale, and
 * nobody is announced as leaving because of the outage; when the bus delivers again, this node
 * says `hello` (every node sends it its table) and every node gets a fresh window to be heard;
 * the deltas it could not send meanwhile still advanced its sequence, so its peers ask for its table.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Bus, BusSubscription } from '../bus/types.js';
import { Subjects } from '../bus/types.js';
import { openEnvelope, sealEnvelope } from '../bus/envelope.js';
import type { Member } from '../protocol/frames.js';

export const ONLINE = '*';

/**
 * Entries per state message: a snapshot of a busy node crosses the bus in chunks that stay far
 * below NATS's default 1 MiB max_payload (an entry is ~40–120 bytes; 2,000 entries ≈ 250 KiB).
 */
export const STATE_CHUNK = 2000;
/** Operations per delta message (a burst of joins is split into several). */
export const DELTA_MAX_OPS = 1000;
/** Bytes of operations per delta message (well under NATS's 1 MiB max_payload). */
export const DELTA_MAX_BYTES = 128 * 1024;

/** The node-own subject a node's table is sent to (a hash token: any node id is a valid subject). */
export function presenceSubjectOf(node: string): string {
  return `${Subjects.presence}.${createHash('sha256').update(node).digest('base64url').slice(0, 16)}`;
}

type Entry = [room: string, id: string, handle: string];
/** A delta operation: 1 add, 0 remove after the grace, 2 remove now (explicit leave). */
type Op = [op: 0 | 1 | 2, room: string, id: string, handle: string];
type Wire =
  | { k: 'd'; node: string; i: string; s: number; o: Op[] }
  | { k: 'hb'; node: string; i?: string; s?: number; n?: number }
  /** A node's whole table as of its sequence `s`, in `parts` messages of at most STATE_CHUNK entries (`part` 0..parts-1) of snapshot `gen`. */
  | { k: 'state'; node: string; e: Entry[]; i?: string; s?: number; gen?: number; part?: number; parts?: number }
  | { k: 'hello' | 'want' | 'bye'; node: string }
  /** Single changes, as nodes before delta batches sent them (still applied: rolling upgrades). */
  | { k: 'add' | 'rm'; node: string; room: string; id: string; handle: string; now?: boolean };

export interface PresenceOptions {
  node: string;
  bus: Bus;
  graceMs: number;
  heartbeatMs?: number;
  /** Changes are gathered this long into one delta message (default 20 ms). */
  batchMs?: number;
  /** A remote node silent this long (while the bus works) is considered gone. Default: max(20 s, 3 heartbeats + 1 s). */
  nodeTimeoutMs?: number;
  onJoin(room: string, user: Member): void;
  onLeave(room: string, user: Member): void;
  onError?(err: unknown): void;
}

interface NodeTable {
  seen: number;
  rooms: Map<string, Map<string, string>>;
  /** Entries in `rooms`. */
  n: number;
  /** Incarnation and last delta sequence applied in order (undefined: not in sync, a table is needed). */
  inc?: string;
  seq?: number;
  /** When this node last asked for that node's table. */
  wantAt: number;
}

export class Presence {
  private readonly nodes = new Map<string, NodeTable>();
  private readonly local = new Map<string, Map<string, { handle: string; count: number }>>();
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();
  /** Distinct users per room across the cluster, kept up to date by apply(). */
  private readonly sizes = new Map<string, number>();
  private subs: BusSubscription[] = [];
  private timer?: ReturnType<typeof setInterval>;
  private flushTimer?: ReturnType<typeof setTimeout>;
  private readonly hbMs: number;
  private readonly batchMs: number;
  private readonly nodeTimeoutMs: number;
  private readonly wantBackoffMs: number;
  private readonly inc = randomBytes(6).toString('base64url');
  private readonly ownSubject: string;
  /** Sequence of the last delta batch made (sent or, while the bus was down, dropped). */
  private seq = 0;
  private outbox: Op[] = [];
  private outboxBytes = 0;
  /** When this node last said `hello` (tables are on their way: no `want` for a while). */
  private helloAt = 0;
  /** When this node last heard one of its own announcements back from the bus. */
  private lastEcho = Date.now();
  /** True while this node does not hear itself: remote presence is held, not expired. */
  private stale = false;
  private offStatus?: () => void;
  private stateGen = 0;
  /** Snapshots being received in chunks, per node: its generation and the parts so far. */
  private readonly incoming = new Map<string, { gen: number; parts: Entry[][]; got: number }>();

  constructor(private readonly o: PresenceOptions) {
    this.hbMs = o.heartbeatMs ?? 2000;
    this.batchMs = o.batchMs ?? 20;
    this.nodeTimeoutMs = o.nodeTimeoutMs ?? Math.max(20_000, this.hbMs * 3 + 1000);
    this.wantBackoffMs = this.hbMs * 2;
    this.ownSubject = presenceSubjectOf(o.node);
    this.nodes.set(o.node, { seen: Infinity, rooms: new Map(), n: 0, wantAt: 0 });
  }

  start(): void {
    this.subs = [this.o.bus.subscribe(Subjects.presence, (d) => this.onWire(d)), this.o.bus.subscribe(this.ownSubject, (d) => this.onWire(d))];
    this.offStatus = this.o.bus.onStatus((s) => {
      if (s === 'up') this.hello();
    });
    this.hello();
    this.timer = setInterval(() => this.tick(), this.hbMs);
    this.timer.unref();
  }

  /** A local connection of `user` entered `room` (reference-counted per node). */
  add(room: string, user: Member): void {
    let r = this.local.get(room);
    if (!r) this.local.set(room, (r = new Map()));
    const cur = r.get(user.id);
    if (cur) {
      cur.count++;
      return;
    }
    r.set(user.id, { handle: user.handle, count: 1 });
    this.apply(this.o.node, room, user.id, user.handle, true, false);
    this.queue([1, room, user.id, user.handle]);
  }

  /** A local connection of `user` left `room`; `now` skips the grace period (explicit leave). */
  remove(room: string, user: Member, now = false): void {
    const r = this.local.get(room);
    const cur = r?.get(user.id);
    if (!r || !cur) return;
    if (--cur.count > 0) return;
    r.delete(user.id);
    if (r.size === 0) this.local.delete(room);
    this.apply(this.o.node, room, user.id, user.handle, false, now);
    this.queue([now ? 2 : 0, room, user.id, user.handle]);
  }

  /** Members of a room across the cluster (at most `cap`). */
  members(room: string, cap = 1000): Member[] {
    const out = new Map<string, string>();
    for (const t of this.nodes.values()) {
      const r = t.rooms.get(room);
      if (!r) continue;
      for (const [id, handle] of r) {
        out.set(id, handle);
        if (out.size >= cap) break;
      }
    }
    return [...out].map(([id, handle]) => ({ id, handle }));
  }

  /** Distinct members of a room across the cluster. */
  size(room: string): number {
    return this.sizes.get(room) ?? 0;
  }

  /** Member counts of every room known anywhere in the cluster. */
  roomCounts(): Map<string, number> {
    const out = new Map(this.sizes);
    out.delete(ONLINE);
    return out;
  }

  /** Stop: send what is gathered, announce departure (others apply the grace period), release the subscriptions and timers. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
    this.send({ k: 'bye', node: this.o.node });
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.offStatus?.();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /** True while remote presence is held because this node does not hear its own heartbeats (bus trouble). */
  get isStale(): boolean {
    return this.stale;
  }

  private queue(op: Op): void {
    const bytes = Buffer.byteLength(op[1]) + Buffer.byteLength(op[2]) + Buffer.byteLength(op[3]) + 16;
    if (this.outbox.length >= DELTA_MAX_OPS || this.outboxBytes + bytes > DELTA_MAX_BYTES) this.flush();
    this.outbox.push(op);
    this.outboxBytes += bytes;
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), this.batchMs);
      this.flushTimer.unref();
    }
  }

  /** Send the gathered changes as one delta batch; its sequence advances even when the bus cannot take it (peers then see the gap). */
  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.outbox.length === 0) return;
    const o = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    this.send({ k: 'd', node: this.o.node, i: this.inc, s: ++this.seq, o });
  }

  private tick(): void {
    const now = Date.now();
    this.flush(); // the heartbeat's sequence and count describe what was sent
    this.send({ k: 'hb', node: this.o.node, i: this.inc, s: this.seq, n: this.nodes.get(this.o.node)!.n });
    if (this.o.bus.status !== 'up' || now - this.lastEcho > this.hbMs * 2 + 1000) {
      this.stale = true; // cannot tell a silent node from a silent bus: hold everything
      return;
    }
    for (const [node, t] of this.nodes) {
      if (node === this.o.node || now - t.seen <= this.nodeTimeoutMs) continue;
      this.replace(node, []); // its users are shown leaving (after the grace) unless they are on another node
      this.nodes.delete(node); // and the node is forgotten (ids of killed nodes never come back)
      this.incoming.delete(node);
    }
  }

  /** Heard our own announcement: the bus delivers. After a stale spell every node gets a fresh window. */
  private heardSelf(): void {
    this.lastEcho = Date.now();
    if (!this.stale) return;
    this.stale = false;
    for (const [node, t] of this.nodes) if (node !== this.o.node) t.seen = this.lastEcho;
    this.hello(); // everyone answers with its table, which replaces what was held
  }

  /** Ask every node for its table (sent to this node's own subject); peers learn ours from our heartbeat. */
  private hello(): void {
    this.send({ k: 'hello', node: this.o.node });
    // answers are on their way: do not also ask each node on its first heartbeat
    const now = Date.now();
    for (const [node, t] of this.nodes) if (node !== this.o.node) t.wantAt = now;
    this.helloAt = now;
  }

  /** This node's table to `to` (a node's own subject), in chunks bounded in entries and bytes. */
  private sendState(to: string): void {
    const all: Entry[] = [];
    for (const [room, r] of this.local) for (const [id, v] of r) all.push([room, id, v.handle]);
    const chunks: Entry[][] = [];
    let cur: Entry[] = [];
    let bytes = 0;
    for (const e of all) {
      const b = Buffer.byteLength(e[0]) + Buffer.byteLength(e[1]) + Buffer.byteLength(e[2]) + 12;
      if (cur.length >= STATE_CHUNK || (cur.length > 0 && bytes + b > DELTA_MAX_BYTES * 2)) {
        chunks.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(e);
      bytes += b;
    }
    chunks.push(cur);
    this.flush(); // the table is as of `seq`: what is gathered goes first
    const gen = ++this.stateGen;
    for (let part = 0; part < chunks.length; part++) {
      this.send({ k: 'state', node: this.o.node, i: this.inc, s: this.seq, e: chunks[part]!, gen, part, parts: chunks.length }, to);
    }
  }

  private send(w: Wire, subject: string = Subjects.presence): void {
    if (this.o.bus.status !== 'up') return; // healed by the peers' `want` after the next heartbeat
    try {
      this.o.bus.publish(subject, sealEnvelope({ kind: 'presence', origin: this.o.node }, JSON.stringify(w)));
    } catch (err) {
      this.o.onError?.(err);
    }
  }

  private onWire(data: Uint8Array): void {
    const env = openEnvelope(data);
    if (env?.header.kind !== 'presence') return;
    if (env.header.origin === this.o.node) return this.heardSelf();
    let w: Wire;
    try {
      w = JSON.parse(env.body) as Wire;
    } catch (err) {
      this.o.onError?.(err);
      return;
    }
    if (typeof w?.node !== 'string' || w.node === this.o.node) return;
    const t = this.table(w.node);
    switch (w.k) {
      case 'd':
        if (Array.isArray(w.o)) this.onDelta(t, w);
        break;
      case 'add':
      case 'rm':
        this.apply(w.node, w.room, w.id, w.handle, w.k === 'add', w.now === true);
        break;
      case 'state':
        if (Array.isArray(w.e)) this.onState(w);
        break;
      case 'hello':
      case 'want':
        this.sendState(presenceSubjectOf(w.node));
        break;
      case 'bye':
        this.incoming.delete(w.node);
        this.replace(w.node, []);
        this.nodes.delete(w.node);
        break;
      case 'hb':
        if (typeof w.i !== 'string') break; // a node before delta batches
        if (t.inc === undefined && t.n === 0 && w.s === 0 && w.n === 0) [t.inc, t.seq] = [w.i, 0]; // a newcomer with nothing yet
        else if (w.i !== t.inc || w.s !== t.seq || w.n !== t.n) this.want(w.node, t);
        break;
    }
    if (w.k !== 'bye') t.seen = Date.now();
  }

  /** Ask `node` for its table, at most once per backoff (the answer may be on its way). */
  private want(node: string, t: NodeTable): void {
    const now = Date.now();
    if (now - t.wantAt < this.wantBackoffMs || now - this.helloAt < this.wantBackoffMs) return;
    t.wantAt = now;
    this.send({ k: 'want', node: this.o.node }, presenceSubjectOf(node));
  }

  private onDelta(t: NodeTable, w: Extract<Wire, { k: 'd' }>): void {
    if (t.inc === w.i && typeof t.seq === 'number' && w.s <= t.seq) return; // in a table already applied
    if (t.inc === undefined && t.n === 0 && w.s === 1) t.seq = 0; // a newcomer's first batch: nothing was missed
    if (t.inc === undefined && t.seq === 0) t.inc = w.i;
    const inOrder = t.inc === w.i && w.s === (t.seq ?? NaN) + 1;
    for (const op of w.o) if (Array.isArray(op)) this.apply(w.node, op[1], op[2], op[3], op[0] === 1, op[0] === 2);
    if (inOrder) t.seq = w.s;
    else this.want(w.node, t); // applied (timely notices), but something before it was missed: the table settles it
  }

  private table(node: string): NodeTable {
    let t = this.nodes.get(node);
    if (!t) this.nodes.set(node, (t = { seen: Date.now(), rooms: new Map(), n: 0, wantAt: 0 }));
    return t;
  }

  private count(room: string, id: string): number {
    let n = 0;
    for (const t of this.nodes.values()) if (t.rooms.get(room)?.has(id)) n++;
    return n;
  }

  private apply(node: string, room: string, id: string, handle: string, present: boolean, now: boolean): void {
    if (typeof room !== 'string' || typeof id !== 'string' || typeof handle !== 'string') return;
    const t = this.table(node);
    const before = this.count(room, id);
    let r = t.rooms.get(room);
    if (present) {
      if (!r) t.rooms.set(room, (r = new Map()));
      if (!r.has(id)) t.n++;
      r.set(id, handle);
    } else if (r) {
      if (r.delete(id)) t.n--;
      if (r.size === 0) t.rooms.delete(room);
    }
    const after = this.count(room, id);
    if (before === 0 && after > 0) {
      this.sizes.set(room, (this.sizes.get(room) ?? 0) + 1);
      this.up(room, { id, handle });
    } else if (before > 0 && after === 0) {
      const n = (this.sizes.get(room) ?? 1) - 1;
      if (n > 0) this.sizes.set(room, n);
      else this.sizes.delete(room);
      this.down(room, { id, handle }, now);
    }
  }

  /** A state message: a whole snapshot, or one chunk of it (applied when every chunk of its generation is in). */
  private onState(w: Extract<Wire, { k: 'state' }>): void {
    const parts = typeof w.parts === 'number' && Number.isInteger(w.parts) && w.parts > 1 && w.parts <= 10_000 ? w.parts : 1;
    let entries: Entry[];
    if (parts === 1) {
      this.incoming.delete(w.node);
      entries = w.e;
    } else {
      const part = w.part;
      if (typeof part !== 'number' || !Number.isInteger(part) || part < 0 || part >= parts) return;
      let inc = this.incoming.get(w.node);
      if (!inc || inc.gen !== w.gen || inc.parts.length !== parts) this.incoming.set(w.node, (inc = { gen: w.gen ?? 0, parts: new Array<Entry[]>(parts), got: 0 }));
      if (inc.parts[part] === undefined) inc.got++;
      inc.parts[part] = w.e;
      if (inc.got < parts) return;
      this.incoming.delete(w.node);
      entries = inc.parts.flat();
    }
    const t = this.table(w.node);
    if (t.inc === w.i && typeof t.seq === 'number' && typeof w.s === 'number' && w.s < t.seq) return; // older than what deltas already brought
    this.replace(w.node, entries);
    if (typeof w.i === 'string' && typeof w.s === 'number') {
      t.inc = w.i;
      t.seq = w.s;
    }
  }

  private replace(node: string, entries: Entry[]): void {
    const t = this.table(node);
    const next = new Set(entries.map(([room, id]) => `${room}\u0000${id}`));
    for (const [room, r] of [...t.rooms]) {
      for (const [id, handle] of [...r]) if (!next.has(`${room}\u0000${id}`)) this.apply(node, room, id, handle, false, false);
    }
    for (const e of entries) if (Array.isArray(e) && !t.rooms.get(e[0])?.has(e[1])) this.apply(node, e[0], e[1], e[2], true, false);
  }
  private up(room: string, user: Member): void {
    const key = `${room}\u0000${user.id}`;
    const t = this.pending.get(key);
    if (t) {
      clearTimeout(t);
      this.pending.delete(key);
      return; // came back within the grace period: nothing to show
    }
    if (room !== ONLINE) this.o.onJoin(room, user);
  }

  private down(room: string, user: Member, now: boolean): void {
    if (room === ONLINE) return;
    const key = `${room}\u0000${user.id}`;
    if (now || this.o.graceMs === 0) {
      const t = this.pending.get(key);
      if (t) clearTimeout(t);
      this.pending.delete(key);
      this.o.onLeave(room, user);
      return;
    }
    if (this.pending.has(key)) return;
    const timer = setTimeout(() => {
      this.pending.delete(key);
      if (this.count(room, user.id) === 0) this.o.onLeave(room, user);
    }, this.o.graceMs);
    timer.unref();
    this.pending.set(key, timer);
  }
}
