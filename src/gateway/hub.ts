/**
 * RoomHub: this node's rooms. It opens a room engine (room.ts) when a room gets its first local
 * subscriber and closes it with the last one, so the node subscribes to a room's bus subject only
 * while the room has members here (interest-based). It routes publishes, typing notices and room
 * frames to the room engines and holds the node-wide byte budget of their encoded caches.
 */
import type { Bus } from '../bus/types.js';
import { Subjects } from '../bus/types.js';
import { sealEnvelope } from '../bus/envelope.js';
import type { History } from '../history/types.js';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage, Member, Position } from '../protocol/frames.js';
import { Room, type RoomContext, type Subscriber } from './room.js';
import { CacheBudget, type CachedMsg } from './room-cache.js';
import { msgFrame } from './wire.js';

export { msgFrame } from './wire.js';
export type { CachedMsg } from './room-cache.js';
/** A local member of a room (a connection), as the room engine sees it. */
export type RoomMember = Subscriber;

export interface HubOptions {
  node: string;
  bus: Bus;
  history: History;
  /** Messages per room kept encoded in memory to answer joins and resumes without reading history (default 256). */
  cacheSize?: number;
  /** Bytes of every room's cache together on this node (default 64 MiB); least recently used rooms' entries go first. */
  cacheBytes?: number;
  /** Messages replayed on a join without `since` (default 50). */
  recentOnJoin?: number;
  /** Most messages a resume replays (default 300). */
  replayMax?: number;
  /** Per-connection send-buffer cap (default 1 MiB). */
  sendBufferBytes?: number;
  /** `members`/`count` of a `joined` frame (default: none). */
  joinedMembers?(room: string): { members: Member[]; count: number };
  onDelivered?(count: number): void;
  onWarn?(msg: string, extra?: object): void;
}

/** A user's typing notices in a room leave this node at most once per this many ms. */
export const TYPING_COALESCE_MS = 2500;

export class RoomHub {
  private readonly rooms = new Map<string, Room>();
  /** The node-wide budget of the rooms' encoded caches. */
  readonly budget: CacheBudget;
  private readonly ctx: RoomContext;
  /** When this node last fanned out a typing notice per `room\nuser` (entries older than the window are swept). */
  private readonly typingSent = new Map<string, number>();

  constructor(private readonly o: HubOptions) {
    this.budget = new CacheBudget(o.cacheBytes ?? 64 * 1024 * 1024);
    this.ctx = {
      node: o.node,
      bus: o.bus,
      history: o.history,
      budget: this.budget,
      cacheSize: o.cacheSize ?? 256,
      recentOnJoin: o.recentOnJoin ?? 50,
      replayMax: o.replayMax ?? 300,
      sendBufferBytes: o.sendBufferBytes ?? 1024 * 1024,
      joinedMembers: o.joinedMembers ?? (() => ({ members: [], count: 0 })),
      ...(o.onDelivered ? { onDelivered: o.onDelivered } : {}),
      ...(o.onWarn ? { onWarn: o.onWarn } : {}),
    };
  }

  /**
   * Join (or re-sync) `member` in a room, resuming after `since` when given: resolves once the
   * `joined` frame, the replay and the hand-over to live delivery are written (or the join was
   * superseded), with the room's last delivered offset and epoch. Rejects with a ConfabError
   * (the member is then not in the room).
   */
  async join(name: string, member: RoomMember, since?: Position): Promise<{ last: number; epoch: string }> {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room(name, this.ctx, (r) => {
        if (this.rooms.get(r.name) === r) this.rooms.delete(r.name);
      });
      this.rooms.set(name, room);
    }
    await room.join(member, since);
    return { last: room.last, epoch: room.epoch };
  }

  leave(name: string, member: RoomMember): void {
    this.rooms.get(name)?.leave(member);
  }

  /** A message stored by this node: deliver locally, then fan out to other nodes; resolves once delivered here (bounded). */
  published(msg: ChatMessage): Promise<void> {
    this.typingSent.delete(`${msg.room}\n${msg.from.user}`); // a sent message ends "typing": the next keystroke is news
    const json = JSON.stringify(msg);
    const delivered = this.rooms.get(msg.room)?.published(msg, msgFrame(json)) ?? Promise.resolve();
    this.o.bus.publish(Subjects.room(msg.room), sealEnvelope({ kind: 'msg', origin: this.o.node, room: msg.room }, json));
    return delivered;
  }

  /** A page of older messages of a room joined here: the `history` frame's JSON text (see Room.olderPage). */
  olderPage(name: string, before: number | undefined, limit: number, maxBytes: number): Promise<string> {
    const room = this.rooms.get(name);
    if (!room) return Promise.reject(new ConfabError('not_joined'));
    return room.olderPage(before, limit, maxBytes);
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

  /** A room frame (presence) to the room's local members not replaying, except `exceptUser`'s. */
  broadcast(name: string, frame: Buffer, exceptUser?: string): void {
    this.rooms.get(name)?.broadcast(frame, exceptUser);
  }

  /** Local room names with member counts. */
  localRooms(): Map<string, number> {
    return new Map([...this.rooms].map(([n, r]) => [n, r.subs.size]));
  }

  /** How many members a room has on this node. */
  memberCount(name: string): number {
    return this.rooms.get(name)?.subs.size ?? 0;
  }

  /** Members of a room on this node. */
  membersOf(name: string): ReadonlySet<RoomMember> {
    return new Set(this.rooms.get(name)?.subs.keys());
  }

  /** Encoded messages after `after` from memory, when the room's cache reaches back that far (else read history). */
  cachedAfter(name: string, after: number): { last: number; msgs: CachedMsg[] } | undefined {
    return this.rooms.get(name)?.cachedAfter(after);
  }

  /** The newest `n` messages from memory, when the room's cache holds that many or its whole history. */
  cachedRecent(name: string, n: number): { last: number; msgs: CachedMsg[] } | undefined {
    return this.rooms.get(name)?.cachedRecent(n);
  }

  /** The bus went down: what this node delivered may no longer be all there is, so stop answering from memory. */
  busDown(): void {
    for (const room of this.rooms.values()) room.busDown();
  }

  /** After a bus outage: read from history whatever each room may have missed, also in quiet rooms. */
  catchUp(): void {
    for (const room of this.rooms.values()) room.catchUp();
  }

  close(): void {
    for (const room of [...this.rooms.values()]) room.close();
    this.rooms.clear();
  }
}
