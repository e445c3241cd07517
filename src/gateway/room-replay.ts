/**
 * Join and resume, for the room engine (room.ts): answer `joined`, replay what the subscriber
 * lacks (from the room's encoded cache when it reaches back far enough, else from history, at
 * most CONFAB_REPLAY_MAX messages for a resume, the rest named as `missed`), at the pace the
 * subscriber reads, then hand over to live delivery: live messages that arrived meanwhile were
 * queued on the cursor and follow with no hole (a hole is read from history) and no duplicate.
 */
import type { ReadResult } from '../history/types.js';
import type { ChatMessage, Position, ServerFrameOf } from '../protocol/frames.js';
import type { Room, Subscriber } from './room.js';
import { msgFrame, textFrame } from './wire.js';

/** Messages per history read during a replay. */
const PAGE = 500;
/** How long a replay waits, in all, for a subscriber to read what it was sent before the send-buffer cap decides. */
export const REPLAY_DRAIN_WAIT_MS = 10_000;

/** One subscriber's position in a room on this node. */
export class Cursor {
  /** Joining: `joined` and the replay are being written; live messages wait in `queue`. */
  syncing = true;
  /** The last offset written to this subscriber. */
  last = 0;
  /** Live messages that arrived during the replay; `own`: the subscriber's own echo, skipped. */
  queue: { msg: ChatMessage; frame: Buffer; own: boolean }[] = [];
  /** Bytes of frames in `queue`. */
  queued = 0;

  /**
   * Queue a live message behind the replay. Bounded: past `cap` bytes the oldest queued messages
   * are dropped; the hand-over reads them back from history (the first one kept names them by `prev`).
   */
  enqueue(msg: ChatMessage, frame: Buffer, own: boolean, cap: number): void {
    this.queue.push({ msg, frame, own });
    this.queued += frame.length;
    while (this.queued > cap && this.queue.length > 1) this.queued -= this.queue.shift()!.frame.length;
  }
}

export function newCursor(): Cursor {
  return new Cursor();
}

type Joined = ServerFrameOf<'joined'>;
type Range = { from: number; to: number };

/** Messages to write, owned by the one replay writing them (`paced` lets them go while it waits). */
interface Page {
  msgs: readonly (ChatMessage | { offset: number; frame: Buffer })[];
  more: boolean;
}

/** Answer a join of `s` (cursor `cur`): `joined`, the replay, then live with no seam. */
export async function replay(room: Room, s: Subscriber, cur: Cursor, since: Position | undefined): Promise<void> {
  const deadline = Date.now() + REPLAY_DRAIN_WAIT_MS; // one budget of waiting for the subscriber per join
  // the first page is built in a helper of its own, so nothing here keeps a reference to it while `paced` waits
  const page = fromCache(room, s, cur, since) ?? (await fromHistory(room, s, cur, since));
  if (!page || !(await pacedThrough(room, s, cur, page, deadline))) return;
  await handOver(room, s, cur);
}

function writeJoined(room: Room, s: Subscriber, epoch: string, last: number, recovered: boolean, extra: { gap?: Range; missed?: Range; reset?: boolean }): void {
  const f: Joined = { t: 'joined', room: room.name, epoch, last, recovered, ...room.ctx.joinedMembers(room.name) };
  if (extra.gap) f.gap = extra.gap;
  if (extra.missed) f.missed = extra.missed;
  if (extra.reset) f.reset = true;
  s.write(textFrame(JSON.stringify(f)));
}

/** From the messages this node delivered recently (no history read): `joined` written, the page to replay; undefined when the cache does not reach back. */
function fromCache(room: Room, s: Subscriber, cur: Cursor, since: Position | undefined): Page | undefined {
  const ctx = room.ctx;
  const max = ctx.replayMax;
  const cached = since ? (since.epoch === room.epoch ? room.cachedAfter(since.offset) : undefined) : room.cachedRecent(ctx.recentOnJoin);
  if (!cached) return undefined;
  let msgs = cached.msgs;
  let missed: Range | undefined;
  if (since && msgs.length > max) {
    missed = { from: msgs[0]!.offset, to: msgs[msgs.length - max - 1]!.offset };
    msgs = msgs.slice(-max);
  }
  writeJoined(room, s, room.epoch, cached.last, since !== undefined && !missed, missed ? { missed } : {});
  cur.last = missed?.to ?? since?.offset ?? 0;
  return { msgs, more: false };
}

/** From history: `joined` written, the first page to replay; undefined when the join was superseded meanwhile. */
async function fromHistory(room: Room, s: Subscriber, cur: Cursor, since: Position | undefined): Promise<Page | undefined> {
  const ctx = room.ctx;
  const max = ctx.replayMax;
  const h = ctx.history;
  let res: ReadResult;
  let recovered = false;
  let reset = false;
  let missed: Range | undefined;
  if (since && since.epoch === room.epoch) {
    res = await h.read(room.name, since.offset, Math.min(PAGE, max + 1));
    recovered = !res.gap;
    if (res.epoch !== since.epoch || (res.messages.length === 0 && since.offset > res.last)) {
      // history was reset after this node last looked, or the client saw offsets this history never had
      recovered = false;
      reset = true;
      res = await h.recent(room.name, ctx.recentOnJoin);
    } else if (res.more || res.messages.length > max) {
      // more than one resume may replay: the newest `max` follow, the rest is named (`missed`) for paging
      const tail = await h.recent(room.name, max);
      const first = res.messages[0];
      const t0 = tail.messages[0];
      if (first && t0 && tail.epoch === res.epoch && tail.messages.length === max && t0.prev >= first.offset) {
        missed = { from: first.offset, to: t0.prev };
        res = { ...tail, ...(res.gap ? { gap: res.gap } : {}), more: false };
        recovered = false;
      }
    }
  } else {
    reset = since !== undefined;
    res = await h.recent(room.name, ctx.recentOnJoin);
  }
  if (!room.holds(s, cur)) return undefined;
  writeJoined(room, s, res.epoch, res.last, recovered, { ...(res.gap ? { gap: res.gap } : {}), ...(missed ? { missed } : {}), reset });
  cur.last = missed?.to ?? (since && !reset ? since.offset : 0);
  return { msgs: res.messages, more: res.more };
}

/**
 * Write `page`, then, while `paced` let the rest of a page go to wait for the subscriber or
 * history has more, read on from the last offset written. False when the join was superseded.
 */
async function pacedThrough(room: Room, s: Subscriber, cur: Cursor, page: Page, deadline: number): Promise<boolean> {
  for (;;) {
    const r = await paced(room, s, cur, page, deadline);
    if (r === 'superseded') return false;
    if (r === 'done' && !page.more) return true;
    const res = await room.ctx.history.read(room.name, cur.last, PAGE);
    if (!room.holds(s, cur)) return false;
    page.msgs = res.messages;
    page.more = res.more;
  }
}

type Paced = 'done' | 'dropped' | 'superseded';

/** A replay that must wait for its subscriber keeps at most this many messages of its page; more are let go and read again. */
const KEEP_WHILE_WAITING = 8;

/**
 * Write replayed messages at the pace the subscriber reads them: whenever it holds more than half
 * the send-buffer cap, wait for it to drain, so an honest client resuming a long absence is never
 * closed as a slow consumer (one that does not read at all still is: the wait gives up at
 * `deadline` and the cap applies). A replay waiting for its subscriber holds no page: beyond a few
 * messages the rest is let go (`dropped`) and read again from history once the subscriber read,
 * so the memory of replays is bounded by the send buffers (docs/limits.md "Memory budget"), not by
 * sockets × rooms × pages. `superseded`: the join was.
 */
async function paced(room: Room, s: Subscriber, cur: Cursor, page: Page, deadline: number): Promise<Paced> {
  const high = room.ctx.sendBufferBytes / 2;
  for (let i = 0; i < page.msgs.length; i++) {
    const m = page.msgs[i]!;
    if (m.offset <= cur.last) continue;
    cur.last = m.offset;
    s.write('frame' in m ? m.frame : msgFrame(JSON.stringify(m)));
    if (s.backlog() <= high) continue;
    const drop = page.msgs.length - i - 1 > KEEP_WHILE_WAITING;
    if (drop) {
      page.msgs = [];
      page.more = true;
    }
    await s.drained(high, deadline);
    if (!room.holds(s, cur)) return 'superseded';
    if (drop) return 'dropped';
  }
  page.msgs = [];
  return 'done';
}

/** Hand over from replay to live: queued live messages follow with no hole and no duplicate. */
async function handOver(room: Room, s: Subscriber, cur: Cursor): Promise<void> {
  const h = room.ctx.history;
  while (cur.queue.length > 0) {
    const batch = cur.queue.splice(0);
    cur.queued = 0;
    for (const q of batch) {
      if (q.msg.offset <= cur.last) continue;
      // history answered before it saw messages the room has since delivered (or the queue dropped its
      // oldest past the cap): read the hole, page by page, up to this message
      while (q.msg.prev > cur.last && cur.last > 0) {
        const before = cur.last;
        const hole = await h.read(room.name, cur.last, PAGE);
        if (!room.holds(s, cur)) return;
        for (const m of hole.messages) {
          if (m.offset >= q.msg.offset || m.offset <= cur.last) continue;
          cur.last = m.offset;
          s.write(msgFrame(JSON.stringify(m)));
        }
        if (cur.last === before || !hole.more) break; // nothing more to read: the hole is gone from history
      }
      cur.last = q.msg.offset;
      if (!q.own) s.write(q.frame);
    }
  }
  cur.syncing = false;
}
