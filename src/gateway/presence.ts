/**
 * Cluster-wide presence. Each node owns the (room, user) entries of its own
 * connections and announces changes on the node-wide `ctl.presence` subject;
 * every node keeps the union and turns its changes into join/leave notices for
 * its local sockets. A user who vanishes (socket closed, node drained or killed)
 * is shown as leaving only after `graceMs`, so moving to another node, a reload
 * or a quick reconnect shows nothing. An explicit `leave` is shown at once.
 * Room '*' marks "connected at all" and is never shown. (Handle ownership is not presence's:
 * it lives in the History, src/auth/handles.ts.)
 *
 * A node that falls silent is dropped (its users shown leaving, after the grace) only
 * while the bus demonstrably works: this node hears its own heartbeats come back. While
 * it does not (bus down, frozen or partitioned broker), remote presence is held as it
 * was, marked stale, and nobody is announced as leaving because of the outage; when the
 * bus delivers again, every node gets a fresh window to be heard and announces its state.
 */
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

type Entry = [room: string, id: string, handle: string];
type Wire =
  | { k: 'add' | 'rm'; node: string; room: string; id: string; handle: string; now?: boolean }
  /** A node's whole table, in `parts` messages of at most STATE_CHUNK entries (`part` 0..parts-1) of snapshot `gen`. */
  | { k: 'state'; node: string; e: Entry[]; gen?: number; part?: number; parts?: number }
  | { k: 'hello' | 'hb' | 'bye'; node: string };

export interface PresenceOptions {
  node: string;
  bus: Bus;
  graceMs: number;
  heartbeatMs?: number;
  /** A remote node silent this long (while the bus works) is considered gone. Default: max(20 s, 3 heartbeats + 1 s). */
  nodeTimeoutMs?: number;
  onJoin(room: string, user: Member): void;
  onLeave(room: string, user: Member): void;
  onError?(err: unknown): void;
}

interface NodeTable {
  seen: number;
  rooms: Map<string, Map<string, string>>;
}

export class Presence {
  private readonly nodes = new Map<string, NodeTable>();
  private readonly local = new Map<string, Map<string, { handle: string; count: number }>>();
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();
  /** Distinct users per room across the cluster, kept up to date by apply(). */
  private readonly sizes = new Map<string, number>();
  private sub?: BusSubscription;
  private timer?: ReturnType<typeof setInterval>;
  private beats = 0;
  private readonly hbMs: number;
  private readonly nodeTimeoutMs: number;
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
    this.nodeTimeoutMs = o.nodeTimeoutMs ?? Math.max(20_000, this.hbMs * 3 + 1000);
    this.nodes.set(o.node, { seen: Infinity, rooms: new Map() });
  }

  start(): void {
    this.sub = this.o.bus.subscribe(Subjects.presence, (d) => this.onWire(d));
    this.offStatus = this.o.bus.onStatus((s) => {
      if (s === 'up') this.announce(true);
    });
    this.announce(true);
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
    this.send({ k: 'add', node: this.o.node, room, id: user.id, handle: user.handle });
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
    this.send({ k: 'rm', node: this.o.node, room, id: user.id, handle: user.handle, now });
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

  /** Stop: announce departure (others apply the grace period), release the subscription and timers. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.send({ k: 'bye', node: this.o.node });
    this.sub?.unsubscribe();
    this.offStatus?.();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /** True while remote presence is held because this node does not hear its own heartbeats (bus trouble). */
  get isStale(): boolean {
    return this.stale;
  }

  private tick(): void {
    const now = Date.now();
    this.beats++;
    if (this.beats % 15 === 0) this.announce(false);
    else this.send({ k: 'hb', node: this.o.node });
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
    this.announce(true); // everyone answers `hello` with its state, which replaces what was held
  }

  private announce(hello: boolean): void {
    if (hello) this.send({ k: 'hello', node: this.o.node });
    const e: Entry[] = [];
    for (const [room, r] of this.local) for (const [id, v] of r) e.push([room, id, v.handle]);
    const gen = ++this.stateGen;
    const parts = Math.max(1, Math.ceil(e.length / STATE_CHUNK));
    for (let part = 0; part < parts; part++) this.send({ k: 'state', node: this.o.node, e: e.slice(part * STATE_CHUNK, (part + 1) * STATE_CHUNK), gen, part, parts });
  }

  private send(w: Wire): void {
    if (this.o.bus.status !== 'up') return; // healed by the next state announcement
    try {
      // "<node>\n<json>": receivers skip their own announcements without parsing them
      this.o.bus.publish(Subjects.presence, sealEnvelope({ kind: 'presence', origin: this.o.node }, JSON.stringify(w)));
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
      case 'add':
      case 'rm':
        this.apply(w.node, w.room, w.id, w.handle, w.k === 'add', w.now === true);
        break;
      case 'state':
        if (Array.isArray(w.e)) this.onState(w);
        break;
      case 'hello':
        this.announce(false);
        break;
      case 'bye':
        this.incoming.delete(w.node);
        this.replace(w.node, []);
        this.nodes.delete(w.node);
        break;
      case 'hb':
        break;
    }
    if (w.k !== 'bye') t.seen = Date.now();
  }

  private table(node: string): NodeTable {
    let t = this.nodes.get(node);
    if (!t) this.nodes.set(node, (t = { seen: Date.now(), rooms: new Map() }));
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
      r.set(id, handle);
    } else if (r) {
      r.delete(id);
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
    if (parts === 1) {
      this.incoming.delete(w.node);
      return this.replace(w.node, w.e);
    }
    const part = w.part;
    if (typeof part !== 'number' || !Number.isInteger(part) || part < 0 || part >= parts) return;
    let inc = this.incoming.get(w.node);
    if (!inc || inc.gen !== w.gen || inc.parts.length !== parts) this.incoming.set(w.node, (inc = { gen: w.gen ?? 0, parts: new Array<Entry[]>(parts), got: 0 }));
    if (inc.parts[part] === undefined) inc.got++;
    inc.parts[part] = w.e;
    if (inc.got < parts) return;
    this.incoming.delete(w.node);
    this.replace(w.node, inc.parts.flat());
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
