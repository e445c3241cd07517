/**
 * RoomHub: this node's view of its rooms. It subscribes to a room's bus subject
 * only while the room has local members (interest-based), and delivers each
 * room's messages to its members strictly in offset order with no hole: every
 * message names its predecessor (`prev`), so a message that arrives early waits
 * until the missing ones are read from history (G1). Each message is encoded
 * once and the same buffer is handed to every local member.
 */
import type { Bus, BusSubscription } from '../bus/types.js';
import { Subjects } from '../bus/types.js';
import { openEnvelope, sealEnvelope } from '../bus/envelope.js';
import type { History } from '../history/types.js';
import type { ChatMessage, Member } from '../protocol/frames.js';
import { readOlder } from './room-history.js';
import { framePayload, textFrame } from './wire.js';

export interface RoomMember {
  /** A user of this member (typing notices are not echoed to the same user). */
  readonly user: Member;
  /** `frame` is a complete WebSocket frame (see wire.ts), shared by every member. */
  onRoomMessage(room: string, msg: ChatMessage, frame: Buffer): void;
  onRoomFrame(room: string, frame: Buffer): void;
  /** The room's history epoch changed under this node: the member must re-sync the room (it is told `reset`). */
  onRoomReset(room: string): void;
}

interface Pending {
  msg: ChatMessage;
  frame: Buffer;
}

/** A message this node delivered, kept encoded for resumes and recent-history replays. */
export interface CachedMsg {
  offset: number;
  prev: number;
  frame: Buffer;
}

interface Room {
  name: string;
  /** The last messages delivered here, a contiguous chain ending at `last` (at most `cacheSize`). */
  cache: CachedMsg[];
  members: Set<RoomMember>;
  sub?: BusSubscription;
  epoch: string;
  last: number;
  ready: Promise<void>;
  isReady: boolean;
  pending: Map<number, Pending>;
  filling: boolean;
  /** A catch-up was asked for while a fill ran. */
  recheck: boolean;
  /** This node has seen every message of the room since it opened (false from a bus outage until caught up). */
  live: boolean;
  /** Publishes of this node waiting for their message to reach the local members (see `delivered`). */
  waiters: Set<{ offset: number; resolve(): void }>;
}

export interface HubOptions {
  node: string;
  /** Messages per room kept encoded in memory to answer joins and resumes without reading history. */
  cacheSize?: number;
  bus: Bus;
  history: History;
  onDelivered?(count: number): void;
  onWarn?(msg: string, extra?: object): void;
}

/** Longest a publish waits for its own message to reach the local members before it is acknowledged anyway. */
const PUBLISHED_WAIT_MS = 5000;

/** A user's typing notices in a room leave this node at most once per this many ms. */
export const TYPING_COALESCE_MS = 2500;


/** Encode a stored message as a complete `msg` WebSocket frame (once per message per node). */
export function msgFrame(json: string): Buffer {
  return textFrame(`{"t":"msg",${json.slice(1)}`);
}

export class RoomHub {
  private readonly rooms = new Map<string, Room>();
  private readonly cacheSize: number;
  /** When this node last fanned out a typing notice per `room\nuser` (entries older than the window are swept). */
  private readonly typingSent = new Map<string, number>();

  constructor(private readonly o: HubOptions) {
    this.cacheSize = o.cacheSize ?? 256;
  }

  /**
   * Encoded messages after `after`, from memory, when this node's cache reaches back that far
   * (undefined otherwise: read history). `last` is the room's last delivered offset.
   */
  cachedAfter(name: string, after: number): { last: number; msgs: CachedMsg[] } | undefined {
    const room = this.rooms.get(name);
    if (!room?.isReady || !room.live || after > room.last) return undefined;
    if (after === room.last) return { last: room.last, msgs: [] };
    const c = this.window(room);
    if (c.length === 0 || c[0]!.prev > after) return undefined;
    let i = c.length;
    while (i > 0 && c[i - 1]!.offset > after) i--;
    return { last: room.last, msgs: c.slice(i) };
  }

  /** The newest `cacheSize` cached messages (the array holds up to twice that between trims). */
  private window(room: Room): CachedMsg[] {
    const c = room.cache;
    return c.length > this.cacheSize ? c.slice(c.length - this.cacheSize) : c;
  }

  /** The newest `n` messages from memory, when the cache holds that many or the room's whole history. */
  cachedRecent(name: string, n: number): { last: number; msgs: CachedMsg[] } | undefined {
    const room = this.rooms.get(name);
    if (!room?.isReady || !room.live) return undefined;
    const c = this.window(room);
    if (room.last === 0) return { last: 0, msgs: [] };
    if (c.length < n && (c.length === 0 || c[0]!.prev !== 0)) return undefined;
    return { last: room.last, msgs: c.slice(Math.max(0, c.length - n)) };
  }

  /**
   * The `history` answer (JSON text) for a page of older messages: the newest `limit` with offset <
   * `before`, from this node's cache when it holds them, else from history; the page is cut (oldest
   * first, `more` set) to at most `maxBytes`.
   */
  async olderPage(name: string, before: number | undefined, limit: number, maxBytes: number): Promise<string> {
    const room = this.rooms.get(name);
    let jsons: string[] | undefined;
    let more = false;
    let upper = before;
    if (room?.isReady && room.live) {
      const c = this.window(room);
      upper = before ?? room.last + 1;
      let i = c.length;
      while (i > 0 && c[i - 1]!.offset >= upper) i--;
      const from = Math.max(0, i - limit);
      if (i - from === limit || (c.length > 0 && c[0]!.prev === 0) || room.last === 0) {
        const page = c.slice(from, i);
        jsons = page.map((m) => framePayload(m.frame).toString());
        more = page.length > 0 ? page[0]!.prev !== 0 : false;
      } else upper = before;
    }
    if (!jsons) {
      const p = await readOlder(this.o.history, name, before, limit);
      upper = p.before;
      jsons = p.messages.map((m) => `{"t":"msg",${JSON.stringify(m).slice(1)}`);
      more = p.more;
    }
    let bytes = 0;
    let keep = jsons.length;
    while (keep > 0) {
      const n = jsons[keep - 1]!.length + 1;
      if (keep < jsons.length && bytes + n > maxBytes) break; // at least the newest one goes
      bytes += n;
      keep--;
    }
    if (keep > 0) more = true;
    return `{"t":"history","room":${JSON.stringify(name)},"before":${upper ?? 0},"msgs":[${jsons.slice(keep).join(',')}],"more":${more}}`;
  }

  /** Add a member; resolves with the last offset delivered in the room once the room is live on this node. */
  async join(name: string, member: RoomMember): Promise<{ last: number; epoch: string }> {
    let room = this.rooms.get(name);
    if (!room) room = this.open(name);
    room.members.add(member);
    try {
      await room.ready;
    } catch (err) {
      this.leave(name, member);
      throw err;
    }
    return { last: room.last, epoch: room.epoch };
  }

  leave(name: string, member: RoomMember): void {
    const room = this.rooms.get(name);
    if (!room || !room.members.delete(member)) return;
    if (room.members.size === 0) {
      room.sub?.unsubscribe();
      this.rooms.delete(name);
      this.release(room, Infinity); // nobody here to deliver to
    }
  }

  /** A message stored by this node: deliver locally, then fan out to other nodes. */
  published(msg: ChatMessage): Promise<void> {
    this.typingSent.delete(`${msg.room}\n${msg.from.user}`); // a sent message ends "typing": the next keystroke is news
    const json = JSON.stringify(msg);
    const room = this.rooms.get(msg.room);
    if (room?.isReady) this.deliver(room, msg, msgFrame(json));
    else if (room) room.pending.set(msg.prev, { msg, frame: msgFrame(json) }); // the room is still opening here
    this.o.bus.publish(Subjects.room(msg.room), sealEnvelope({ kind: 'msg', origin: this.o.node, room: msg.room }, json));
    return this.delivered(room, msg);
  }

  /**
   * Resolves once `msg` was handed to the room's local members (at once when it was, or when the room has
   * none here): a message that waits behind a hole is delivered before its sender's ack. Bounded: a room
   * that cannot fill the hole releases the ack after PUBLISHED_WAIT_MS (the member catches up by `prev`).
   */
  private delivered(room: Room | undefined, msg: ChatMessage): Promise<void> {
    if (!room || this.rooms.get(room.name) !== room || (room.isReady && room.epoch === msg.epoch && room.last >= msg.offset)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = { offset: msg.offset, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        room.waiters.delete(w);
        resolve();
      }, PUBLISHED_WAIT_MS);
      room.waiters.add(w);
    });
  }

  /**
   * Ephemeral typing notice, fanned out through the bus to every node with members in the room;
   * coalesced to at most one per user and room per TYPING_COALESCE_MS from this node, whatever
   * number of sockets the user types on (a notice means "typing for the next few seconds").
   */
  typing(name: string, user: Member): void {
    const now = Date.now();
    const key = `${name}\n${user.id}`;
    const last = this.typingSent.get(key);
    if (last !== undefined && now - last < TYPING_COALESCE_MS) return;
    // the map is kept in time order (a key is re-inserted when sent), so expired entries are all at the front
    this.typingSent.delete(key);
    for (const [k, t] of this.typingSent) {
      if (now - t < TYPING_COALESCE_MS) break;
      this.typingSent.delete(k);
    }
    this.typingSent.set(key, now);
    this.o.bus.publish(Subjects.room(name), sealEnvelope({ kind: 'typing', origin: this.o.node, room: name }, JSON.stringify(user)));
  }

  /** Local room names with member counts. */
  localRooms(): Map<string, number> {
    return new Map([...this.rooms].map(([n, r]) => [n, r.members.size]));
  }

  /** Members of a room on this node. */
  membersOf(name: string): ReadonlySet<RoomMember> {
    return this.rooms.get(name)?.members ?? new Set();
  }

  /** The bus went down: what this node delivered may no longer be all there is, so stop answering from memory. */
  busDown(): void {
    for (const room of this.rooms.values()) {
      room.cache.length = 0;
      room.live = false;
    }
  }

  /** After a bus outage: read from history whatever each room may have missed, also in quiet rooms. */
  catchUp(): void {
    for (const room of this.rooms.values()) {
      room.cache.length = 0;
      room.live = false;
      if (room.isReady) void this.catchUpRoom(room);
    }
  }

  close(): void {
    for (const room of this.rooms.values()) {
      room.sub?.unsubscribe();
      this.release(room, Infinity);
    }
    this.rooms.clear();
  }

  private open(name: string): Room {
    const room: Room = { name, cache: [], members: new Set(), epoch: '', last: 0, ready: Promise.resolve(), isReady: false, pending: new Map(), filling: false, recheck: false, live: true, waiters: new Set() };
    this.rooms.set(name, room);
    room.ready = (async () => {
      room.sub = this.o.bus.subscribe(Subjects.room(name), (d) => this.onBus(room, d));
      await this.o.bus.flush();
      const info = await this.o.history.info(name);
      room.epoch = info.epoch;
      room.last = info.last;
      room.isReady = true;
      this.drainPending(room);
      if (room.pending.size > 0) void this.fill(room);
    })();
    room.ready.catch(() => {
      room.sub?.unsubscribe();
      if (this.rooms.get(name) === room) this.rooms.delete(name);
      this.release(room, Infinity);
    });
    return room;
  }

  private onBus(room: Room, data: Uint8Array): void {
    const env = openEnvelope(data, room.name);
    if (!env || env.header.room !== room.name) return;
    const json = env.body;
    if (env.header.kind === 'typing') {
      const user = JSON.parse(json) as Member;
      const frame = textFrame(`{"t":"typing","room":${JSON.stringify(room.name)},"user":${json}}`);
      for (const m of room.members) if (m.user.id !== user.id) m.onRoomFrame(room.name, frame);
      return;
    }
    if (env.header.kind !== 'msg' || env.header.origin === this.o.node) return; // own messages were delivered in published()
    const msg = JSON.parse(json) as ChatMessage;
    if (!room.isReady) {
      room.pending.set(msg.prev, { msg, frame: msgFrame(json) });
      return;
    }
    if (msg.offset <= room.last && msg.epoch === room.epoch) return;
    this.deliver(room, msg, msgFrame(json));
  }

  /** History was reset (new epoch): follow it, and have every local member re-sync the room. */
  private resetEpoch(room: Room, epoch: string, last: number): void {
    this.o.onWarn?.('history epoch changed; members re-sync the room', { room: room.name, from: room.epoch, to: epoch });
    room.epoch = epoch;
    room.last = last;
    room.pending.clear();
    room.cache.length = 0;
    this.release(room, Infinity); // the members re-sync from history
    for (const m of [...room.members]) m.onRoomReset(room.name);
  }

  private deliver(room: Room, msg: ChatMessage, frame: Buffer): void {
    if (msg.epoch !== room.epoch) return this.resetEpoch(room, msg.epoch, msg.offset);
    if (msg.offset <= room.last) return;
    if (msg.prev !== room.last) {
      room.pending.set(msg.prev, { msg, frame });
      void this.fill(room);
      return;
    }
    this.emit(room, msg, frame);
    this.drainPending(room);
  }

  private emit(room: Room, msg: ChatMessage, frame: Buffer): void {
    const c = room.cache;
    if (c.length > 0 && c[c.length - 1]!.offset !== msg.prev) c.length = 0; // keep one unbroken chain
    if (this.cacheSize > 0) {
      c.push({ offset: msg.offset, prev: msg.prev, frame });
      if (c.length > this.cacheSize * 2) c.splice(0, c.length - this.cacheSize);
    }
    room.last = msg.offset;
    if (room.waiters.size > 0) this.release(room, room.last);
    for (const m of room.members) m.onRoomMessage(room.name, msg, frame);
    this.o.onDelivered?.(room.members.size);
  }

  /** Let the publishes whose message is at or below `upTo` answer (all of them: Infinity). */
  private release(room: Room, upTo: number): void {
    for (const w of room.waiters) if (w.offset <= upTo) {
      room.waiters.delete(w);
      w.resolve();
    }
  }

  private drainPending(room: Room): void {
    let next: Pending | undefined;
    while ((next = room.pending.get(room.last))) {
      room.pending.delete(room.last);
      if (next.msg.epoch === room.epoch && next.msg.offset > room.last) this.emit(room, next.msg, next.frame);
    }
    if (room.pending.size > 0) for (const k of room.pending.keys()) if (k < room.last) room.pending.delete(k);
  }

  /**
   * Read history after `room.last`: to fill the hole before pending messages, or (`force`) to catch
   * up after an outage. Resolves false when a read failed (the caller may retry).
   */
  private async fill(room: Room, force = false): Promise<boolean> {
    if (room.filling) {
      if (force) room.recheck = true; // run once more when the current fill ends
      return true;
    }
    room.filling = true;
    let ok = true;
    try {
      let again = force;
      for (let i = 0; i < 1000 && (room.pending.size > 0 || again) && this.rooms.get(room.name) === room; i++) {
        again = false;
        const before = room.last;
        const r = await this.o.history.read(room.name, room.last, 500);
        if (r.epoch !== room.epoch) {
          this.resetEpoch(room, r.epoch, r.last);
          break;
        }
        if (r.gap && r.gap.from === room.last + 1) {
          this.o.onWarn?.('history no longer reaches back to this node\'s position; skipping', { room: room.name, gap: r.gap });
          room.last = r.gap.to;
        }
        for (const m of r.messages) {
          if (m.offset <= room.last) continue;
          if (m.prev !== room.last) break;
          this.emit(room, m, msgFrame(JSON.stringify(m)));
        }
        this.drainPending(room);
        if (room.last === before) break; // no progress: what is still pending is not in history (yet)
        again = r.more; // a long backlog: keep reading
      }
    } catch (err) {
      ok = false;
      this.o.onWarn?.('history read failed while catching up', { room: room.name, err: String(err) });
    } finally {
      room.filling = false;
    }
    if (ok && room.recheck) {
      room.recheck = false;
      return this.fill(room, true);
    }
    return ok;
  }

  /** Catch a room up after an outage, retrying while history is still reconnecting (bounded). */
  private async catchUpRoom(room: Room): Promise<void> {
    for (let attempt = 0; attempt < 40 && this.rooms.get(room.name) === room; attempt++) {
      if (await this.fill(room, true)) {
        if (this.o.bus.status === 'up') room.live = true;
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
