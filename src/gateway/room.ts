/**
 * The room engine: one room on one node. It owns the room's bus interest (one subscription
 * while it has local subscribers), its epoch and last delivered offset, the encoded cache,
 * messages that arrived ahead of a hole (`pending`, filled from history by `prev`), and every
 * local subscriber's cursor. It alone answers a join or resume (room-replay.ts: cache or history,
 * bounded, paced, handed over to live delivery with no seam) and pages older messages
 * (`olderPage`). Live messages reach the subscribers strictly in offset order, each encoded
 * once and the same frame written to every socket. History is read here and nowhere else.
 */
import type { Bus, BusSubscription } from '../bus/types.js';
import { Subjects } from '../bus/types.js';
import { openEnvelope } from '../bus/envelope.js';
import type { History } from '../history/types.js';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage, Member, Position } from '../protocol/frames.js';
import { Backoff } from '../shared/backoff.js';
import { RoomCache, type CacheBudget, type CachedMsg } from './room-cache.js';
import { readOlder } from './room-history.js';
import { newCursor, replay, type Cursor } from './room-replay.js';
import { framePayload, msgFrame, textFrame } from './wire.js';

/** What the room engine needs of a local subscriber (a WebSocket connection). */
export interface Subscriber {
  /** Typing notices are not sent back to the same user. */
  readonly user: Member;
  /** Closed: nothing more is written. */
  readonly gone: boolean;
  /** Queue a complete frame (shared by every subscriber) for this tick's write; the send-buffer cap applies. */
  write(frame: Buffer): void;
  /** Bytes written and not yet taken by the peer (socket backlog and this tick's queue). */
  backlog(): number;
  /** Resolves once the backlog is at most `bytes`, or at `deadline`. */
  drained(bytes: number, deadline: number): Promise<void>;
  /** True for a live message this subscriber does not want back (its own, with echo off). */
  ownEcho(room: string, msg: ChatMessage): boolean;
  /** The room could not be re-synced after a history reset: it is no longer joined here. */
  lost(room: string, err: ConfabError): void;
}

/** The node-level settings and services every room engine shares. */
export interface RoomContext {
  node: string;
  bus: Bus;
  history: History;
  budget: CacheBudget;
  /** Messages per room kept encoded in memory. */
  cacheSize: number;
  /** Messages replayed on a join without `since`. */
  recentOnJoin: number;
  /** Most messages one resume replays (beyond: `joined.missed`). */
  replayMax: number;
  /** Per-connection send-buffer cap: replays and history pages wait for the socket below half of it. */
  sendBufferBytes: number;
  /** `members`/`count` of a `joined` frame. */
  joinedMembers(room: string): { members: Member[]; count: number };
  onDelivered?(count: number): void;
  onWarn?(msg: string, extra?: object): void;
}

interface Pending {
  msg: ChatMessage;
  frame: Buffer;
}

/** Longest a publish waits for its own message to reach the local members before it is acknowledged anyway. */
const PUBLISHED_WAIT_MS = 5000;
/** Messages per history read while filling a hole or catching up. */
const FILL_PAGE = 500;
/** A catch-up after an outage is retried while history reconnects: jittered 100–500 ms apart, for up to 10 s. */
const CATCH_UP = { backoff: { minMs: 100, maxMs: 500 }, forMs: 10_000 };

export class Room {
  readonly subs = new Map<Subscriber, Cursor>();
  readonly cache: RoomCache;
  epoch = '';
  last = 0;
  isReady = false;
  /** This node has seen every message of the room since it opened (false from a bus outage until caught up). */
  live = true;
  readonly ready: Promise<void>;
  private sub?: BusSubscription;
  private readonly pending = new Map<number, Pending>();
  private filling = false;
  /** A catch-up was asked for while a fill ran. */
  private recheck = false;
  private closed = false;
  /** Publishes of this node waiting for their message to reach the local members (see `delivered`). */
  private readonly waiters = new Set<{ offset: number; resolve(): void }>();

  constructor(
    readonly name: string,
    readonly ctx: RoomContext,
    /** Called once when the room closes (last subscriber gone, or it failed to open). */
    private readonly onClosed: (room: Room) => void,
  ) {
    this.cache = new RoomCache(ctx.cacheSize, ctx.budget);
    this.ready = this.open();
    this.ready.catch(() => this.close());
  }

  private async open(): Promise<void> {
    this.sub = this.ctx.bus.subscribe(Subjects.room(this.name), (d) => this.onBus(d));
    await this.ctx.bus.flush();
    const info = await this.ctx.history.info(this.name);
    this.epoch = info.epoch;
    this.last = info.last;
    this.isReady = true;
    this.drainPending();
    if (this.pending.size > 0) void this.fill();
  }

  // ---- subscribers

  /**
   * Join or resume (again: re-sync) for `s`: resolves once the `joined` frame, the replay and the
   * hand-over to live delivery are done, or the join was superseded (a later join, a leave, a close).
   * Rejects with a ConfabError when the room could not be opened or history could not be read.
   */
  async join(s: Subscriber, since: Position | undefined): Promise<void> {
    const cur = newCursor();
    this.subs.set(s, cur);
    try {
      await this.ready;
    } catch (err) {
      this.leave(s, cur);
      throw err instanceof ConfabError ? err : new ConfabError('bus_unavailable', 'could not subscribe to the room', { cause: err });
    }
    if (!this.holds(s, cur)) return;
    try {
      await replay(this, s, cur, since);
    } catch (err) {
      if (!this.holds(s, cur)) return; // superseded meanwhile: its own join answers
      this.leave(s, cur);
      throw err instanceof ConfabError ? err : new ConfabError('store_failed', 'history read failed while joining; join again', { cause: err });
    }
  }

  /** True while `cur` is `s`'s current cursor here and `s` is open (a replay goes on only then). */
  holds(s: Subscriber, cur: Cursor): boolean {
    return !s.gone && !this.closed && this.subs.get(s) === cur;
  }

  /** Remove a subscriber (only when its cursor is still `cur`, when given); the last one closes the room. */
  leave(s: Subscriber, cur?: Cursor): void {
    if (cur !== undefined && this.subs.get(s) !== cur) return;
    if (!this.subs.delete(s)) return;
    if (this.subs.size === 0) this.close();
  }

  /** A room frame (typing, presence) to every subscriber not replaying, except those of `exceptUser`. */
  broadcast(frame: Buffer, exceptUser?: string): void {
    for (const [s, cur] of this.subs) if (!cur.syncing && s.user.id !== exceptUser) s.write(frame);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub?.unsubscribe();
    this.cache.clear();
    this.pending.clear();
    this.release(Infinity); // nobody here to deliver to
    this.onClosed(this);
  }

  // ---- cache answers (undefined: read history)

  /** Encoded messages after `after` from memory, when the cache reaches back that far. */
  cachedAfter(after: number): { last: number; msgs: CachedMsg[] } | undefined {
    if (!this.isReady || !this.live || after > this.last) return undefined;
    if (after === this.last) return { last: this.last, msgs: [] };
    const msgs = this.cache.after(after);
    if (msgs) this.cache.touch();
    return msgs && { last: this.last, msgs };
  }

  /** The newest `n` messages from memory, when the cache holds that many or the room's whole history. */
  cachedRecent(n: number): { last: number; msgs: CachedMsg[] } | undefined {
    if (!this.isReady || !this.live) return undefined;
    if (this.last === 0) return { last: 0, msgs: [] };
    const msgs = this.cache.recent(n);
    if (msgs) this.cache.touch();
    return msgs && { last: this.last, msgs };
  }

  /**
   * The `history` answer (JSON text): the newest `limit` messages with offset < `before` (default:
   * the newest), from the cache when it holds them, else from history; cut to at most `maxBytes`
   * (oldest first, `more` then true).
   */
  async olderPage(before: number | undefined, limit: number, maxBytes: number): Promise<string> {
    let jsons: string[];
    let more: boolean;
    let upper: number;
    const cached = this.isReady && this.live ? this.cache.before(before ?? this.last + 1, limit) : undefined;
    if (cached && (cached.length > 0 || this.last === 0)) {
      this.cache.touch();
      upper = before ?? this.last + 1;
      jsons = cached.map((m) => framePayload(m.frame).toString());
      more = cached.length > 0 && cached[0]!.prev !== 0;
    } else {
      const p = await readOlder(this.ctx.history, this.name, before, limit);
      upper = p.before;
      jsons = p.messages.map((m) => `{"t":"msg",${JSON.stringify(m).slice(1)}`);
      more = p.more;
    }
    let bytes = 0;
    let keep = jsons.length; // index of the oldest message kept
    while (keep > 0) {
      const n = jsons[keep - 1]!.length + 1;
      if (keep < jsons.length && bytes + n > maxBytes) break; // the newest one always goes
      bytes += n;
      keep--;
    }
    if (keep > 0) more = true;
    return `{"t":"history","room":${JSON.stringify(this.name)},"before":${upper},"msgs":[${jsons.slice(keep).join(',')}],"more":${more}}`;
  }

  // ---- live delivery

  /** A message stored by this node: deliver it here; resolves once it reached the local subscribers (bounded). */
  published(msg: ChatMessage, frame: Buffer): Promise<void> {
    if (this.isReady) this.deliver(msg, frame);
    else this.pending.set(msg.prev, { msg, frame }); // the room is still opening here
    return this.delivered(msg);
  }

  /**
   * Resolves once `msg` was handed to the subscribers (at once when it was): a message that waits
   * behind a hole is delivered before its sender's ack. Bounded: a room that cannot fill the hole
   * releases the ack after PUBLISHED_WAIT_MS (the subscriber catches up by `prev`).
   */
  private delivered(msg: ChatMessage): Promise<void> {
    if (this.closed || (this.isReady && this.epoch === msg.epoch && this.last >= msg.offset)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = { offset: msg.offset, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        resolve();
      }, PUBLISHED_WAIT_MS);
      this.waiters.add(w);
    });
  }

  private onBus(data: Uint8Array): void {
    const env = openEnvelope(data, this.name);
    if (!env || env.header.room !== this.name) return;
    const json = env.body;
    if (env.header.kind === 'typing') {
      const user = JSON.parse(json) as Member;
      this.broadcast(textFrame(`{"t":"typing","room":${JSON.stringify(this.name)},"user":${json}}`), user.id);
      return;
    }
    if (env.header.kind !== 'msg' || env.header.origin === this.ctx.node) return; // own messages were delivered in published()
    const msg = JSON.parse(json) as ChatMessage;
    if (!this.isReady) {
      this.pending.set(msg.prev, { msg, frame: msgFrame(json) });
      return;
    }
    if (msg.offset <= this.last && msg.epoch === this.epoch) return;
    this.deliver(msg, msgFrame(json));
  }

  private deliver(msg: ChatMessage, frame: Buffer): void {
    if (msg.epoch !== this.epoch) return this.resetEpoch(msg.epoch, msg.offset);
    if (msg.offset <= this.last) return;
    if (msg.prev !== this.last) {
      this.pending.set(msg.prev, { msg, frame });
      void this.fill();
      return;
    }
    this.emit(msg, frame);
    this.drainPending();
  }

  private emit(msg: ChatMessage, frame: Buffer): void {
    this.cache.push({ offset: msg.offset, prev: msg.prev, frame });
    this.last = msg.offset;
    if (this.waiters.size > 0) this.release(this.last);
    for (const [s, cur] of this.subs) {
      if (cur.syncing) {
        cur.enqueue(msg, frame, s.ownEcho(this.name, msg), this.ctx.sendBufferBytes);
      } else if (msg.offset > cur.last) {
        cur.last = msg.offset;
        if (!s.ownEcho(this.name, msg)) s.write(frame);
      }
    }
    this.ctx.onDelivered?.(this.subs.size);
  }

  /** Let the publishes whose message is at or below `upTo` answer (all of them: Infinity). */
  private release(upTo: number): void {
    for (const w of this.waiters)
      if (w.offset <= upTo) {
        this.waiters.delete(w);
        w.resolve();
      }
  }

  private drainPending(): void {
    let next: Pending | undefined;
    while ((next = this.pending.get(this.last))) {
      this.pending.delete(this.last);
      if (next.msg.epoch === this.epoch && next.msg.offset > this.last) this.emit(next.msg, next.frame);
    }
    if (this.pending.size > 0) for (const k of this.pending.keys()) if (k < this.last) this.pending.delete(k);
  }

  /** History was reset (new epoch): follow it, and re-sync every subscriber (each is told `reset`). */
  private resetEpoch(epoch: string, last: number): void {
    this.ctx.onWarn?.('history epoch changed; members re-sync the room', { room: this.name, from: this.epoch, to: epoch });
    this.epoch = epoch;
    this.last = last;
    this.pending.clear();
    this.cache.clear();
    this.release(Infinity); // the subscribers re-sync from history
    for (const [s, cur] of [...this.subs]) {
      // a position in the old epoch: the answer is `joined` with reset, then recent messages
      const since = { epoch: '', offset: cur.last };
      this.join(s, since).catch((err: unknown) => {
        s.lost(this.name, err instanceof ConfabError ? err : new ConfabError('store_failed', undefined, { cause: err }));
      });
    }
  }

  // ---- outages and holes

  /** The bus went down: what this node delivered may no longer be all there is, so stop answering from memory. */
  busDown(): void {
    this.cache.clear();
    this.live = false;
  }

  /** After a bus outage: read from history whatever the room may have missed, also when quiet. */
  catchUp(): void {
    this.cache.clear();
    this.live = false;
    if (this.isReady) void this.catchUpLoop();
  }

  /** Catch up after an outage, retrying while history is still reconnecting (bounded). */
  private async catchUpLoop(): Promise<void> {
    const backoff = new Backoff(CATCH_UP.backoff);
    const until = Date.now() + CATCH_UP.forMs;
    while (!this.closed) {
      if (await this.fill(true)) {
        if (this.ctx.bus.status === 'up') this.live = true;
        return;
      }
      if (Date.now() >= until) return;
      await backoff.wait();
    }
  }

  /**
   * Read history after `last`: to fill the hole before pending messages, or (`force`) to catch up
   * after an outage. Resolves false when a read failed (the caller may retry).
   */
  private async fill(force = false): Promise<boolean> {
    if (this.filling) {
      if (force) this.recheck = true; // run once more when the current fill ends
      return true;
    }
    this.filling = true;
    let ok = true;
    try {
      let again = force;
      for (let i = 0; i < 1000 && (this.pending.size > 0 || again) && !this.closed; i++) {
        again = false;
        const before = this.last;
        const r = await this.ctx.history.read(this.name, this.last, FILL_PAGE);
        if (r.epoch !== this.epoch) {
          this.resetEpoch(r.epoch, r.last);
          break;
        }
        if (r.gap && r.gap.from === this.last + 1) {
          this.ctx.onWarn?.("history no longer reaches back to this node's position; skipping", { room: this.name, gap: r.gap });
          this.last = r.gap.to;
        }
        for (const m of r.messages) {
          if (m.offset <= this.last) continue;
          if (m.prev !== this.last) break;
          this.emit(m, msgFrame(JSON.stringify(m)));
        }
        this.drainPending();
        if (this.last === before) break; // no progress: what is still pending is not in history (yet)
        again = r.more; // a long backlog: keep reading
      }
    } catch (err) {
      ok = false;
      this.ctx.onWarn?.('history read failed while catching up', { room: this.name, err: String(err) });
    } finally {
      this.filling = false;
    }
    if (ok && this.recheck) {
      this.recheck = false;
      return this.fill(true);
    }
    return ok;
  }
}
