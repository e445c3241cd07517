/**
 * Reading a room's history backwards (the `history` frame's pages) through the History
 * interface, which only reads forwards (`read(after, limit)`). Offsets are contiguous on most
 * adapters (one forward read then answers a page) and sparse on JetStream (sequences shared by
 * every room): the window read grows geometrically until it holds `limit` messages or reaches the
 * oldest one kept, so a page costs a few reads, each bounded by the window.
 */
import type { History } from '../history/types.js';
import type { ChatMessage } from '../protocol/frames.js';

export interface OlderPage {
  epoch: string;
  /** The exclusive upper bound used: the request's `before`, or the newest offset + 1. */
  before: number;
  /** Ascending, every offset < before; the newest `limit` of them. */
  messages: ChatMessage[];
  /** Older messages than the first returned are still kept. */
  more: boolean;
}

/** Forward reads per page are at most this many messages each. */
const READ_PAGE = 500;
/** Window growth rounds before giving up looking further back (sparse offsets: 4^12 × limit). */
const MAX_ROUNDS = 12;

/** The newest `limit` messages of `room` with offset < `before` (default: all), ascending. */
export async function readOlder(h: History, room: string, before: number | undefined, limit: number): Promise<OlderPage> {
  const info = await h.info(room);
  const upper = Math.min(before ?? info.last + 1, info.last + 1);
  const echo = before ?? info.last + 1;
  if (info.last === 0 || upper <= info.first || limit <= 0) return { epoch: info.epoch, before: echo, messages: [], more: false };
  const floor = Math.max(0, info.first - 1); // read(after = floor) starts at the oldest kept message
  let got: ChatMessage[] = [];
  let epoch = info.epoch;
  let hi = upper; // the window read so far is (lo, upper): the next one ends at hi (exclusive)
  let span = limit;
  for (let round = 0; round < MAX_ROUNDS && got.length < limit && hi - 1 > floor; round++) {
    const lo = Math.max(floor, hi - 1 - span);
    const part: ChatMessage[] = [];
    let after = lo;
    for (;;) {
      const r = await h.read(room, after, READ_PAGE);
      epoch = r.epoch;
      let done = !r.more || r.messages.length === 0;
      for (const m of r.messages) {
        if (m.offset >= hi) {
          done = true;
          break;
        }
        part.push(m);
        if (part.length > limit) part.shift(); // only the newest `limit` of a window can be wanted
      }
      if (done) break;
      after = r.messages.at(-1)!.offset;
    }
    got = part.concat(got).slice(-limit);
    hi = lo + 1;
    span *= 4;
  }
  const oldest = got[0];
  return { epoch, before: echo, messages: got, more: oldest !== undefined ? oldest.offset > info.first : false };
}
