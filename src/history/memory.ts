/**
 * In-memory history: the reference adapter for the History contract. Nothing
 * survives the process. Offsets are contiguous per room, starting at 1.
 * Retention (count, bytes, age) and the dedupe window as every adapter (types.ts Retention).
 */
import type { ChatMessage } from '../protocol/frames.js';
import { conflictError, contentHash, dedupeKey, fromRecord, newEpoch, readResult, storedBytes, type DedupeRecord } from './common.js';
import { roomKeepMs } from './retention.js';
import { DEFAULT_RETENTION, type AppendInput, type AppendResult, type History, type ReadResult, type Retention, type RoomInfo } from './types.js';

interface RoomLog {
  msgs: ChatMessage[];
  sizes: number[];
  bytes: number;
  last: number;
  lastTs: number;
  ids: Map<string, DedupeRecord & { expires: number }>;
}

export class MemoryHistory implements History {
  readonly kind = 'memory';
  readonly epoch = newEpoch();
  private readonly logs = new Map<string, RoomLog>();
  private readonly r: Retention;
  /** Offsets of forgotten rooms never come back: a room made again starts above this. */
  private floor = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  /** `opts`: the message limit per room, or the whole Retention; `sweepMs` runs retention periodically. */
  constructor(opts: number | Partial<Retention> = {}, sweepMs?: number) {
    this.r = { ...DEFAULT_RETENTION, ...(typeof opts === 'number' ? { limit: opts } : opts) };
    if (sweepMs) {
      this.timer = setInterval(() => void this.sweep(), sweepMs);
      this.timer.unref();
    }
  }

  private log(room: string): RoomLog {
    let l = this.logs.get(room);
    if (!l) this.logs.set(room, (l = { msgs: [], sizes: [], bytes: 0, last: this.floor, lastTs: 0, ids: new Map() }));
    return l;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const l = this.log(input.room);
    const key = dedupeKey(input.from.user, input.id);
    const hash = contentHash(input);
    const now = Date.now();
    const seen = l.ids.get(key);
    if (seen && seen.expires > now) {
      if (seen.hash !== hash) throw conflictError(input);
      const kept = l.msgs.find((m) => m.offset === seen.offset);
      return { message: kept ?? fromRecord(input, seen, this.epoch), duplicate: true };
    }
    const message: ChatMessage = { ...input, offset: l.last + 1, prev: l.last, epoch: this.epoch };
    const size = storedBytes(input);
    l.last = message.offset;
    l.lastTs = Math.max(l.lastTs, input.ts);
    l.msgs.push(message);
    l.sizes.push(size);
    l.bytes += size;
    l.ids.set(key, { offset: message.offset, prev: message.prev, ts: input.ts, hash, expires: now + this.r.dedupeWindowMs });
    while (l.msgs.length > this.r.limit || (this.r.maxBytes > 0 && l.bytes > this.r.maxBytes && l.msgs.length > 1)) this.dropOldest(l);
    return { message, duplicate: false };
  }

  private dropOldest(l: RoomLog): void {
    l.msgs.shift();
    l.bytes -= l.sizes.shift() ?? 0;
  }

  /** Retention by age, expired ids, forgotten rooms (CONFAB_HISTORY_SWEEP_MS; tests call it). */
  async sweep(now = Date.now()): Promise<{ messages: number; ids: number; rooms: number }> {
    const out = { messages: 0, ids: 0, rooms: 0 };
    const cutoff = now - this.r.maxAgeMs;
    for (const [room, l] of this.logs) {
      if (this.r.maxAgeMs > 0) {
        let k = -1;
        for (let i = 0; i < l.msgs.length; i++) if (l.msgs[i]!.ts < cutoff) k = i; // prefix up to the newest old one
        for (let i = 0; i <= k; i++, out.messages++) this.dropOldest(l);
      }
      for (const [key, rec] of l.ids) {
        if (rec.expires <= now) {
          l.ids.delete(key);
          out.ids++;
        }
      }
      if (this.r.maxAgeMs > 0 && l.msgs.length === 0 && l.ids.size === 0 && l.lastTs < now - roomKeepMs(this.r)) {
        this.floor = Math.max(this.floor, l.last);
        this.logs.delete(room);
        out.rooms++;
      }
    }
    return out;
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    const l = this.logs.get(room);
    if (!l) return readResult(this.epoch, after, [], 0, limit);
    const first = l.msgs[0]?.offset ?? l.last + 1;
    const start = Math.max(0, after + 1 - first);
    return readResult(this.epoch, after, l.msgs.slice(start, start + limit), l.last, limit);
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    const l = this.logs.get(room);
    if (!l || limit <= 0) return { epoch: this.epoch, messages: [], last: l?.last ?? 0, more: false };
    const msgs = l.msgs.slice(-limit);
    return { epoch: this.epoch, messages: msgs, last: l.last, more: false };
  }

  async info(room: string): Promise<RoomInfo> {
    const l = this.logs.get(room);
    return { epoch: this.epoch, first: l?.msgs[0]?.offset ?? 0, last: l?.last ?? 0 };
  }

  async rooms(): Promise<string[]> {
    return [...this.logs.keys()];
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }
}
