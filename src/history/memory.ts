/**
 * In-memory history: the reference adapter for the History contract. Nothing
 * survives the process. Offsets are contiguous per room, starting at 1.
 */
import type { ChatMessage } from '../protocol/frames.js';
import { dedupeKey, newEpoch, readResult } from './common.js';
import type { AppendInput, AppendResult, History, ReadResult, RoomInfo } from './types.js';

interface RoomLog {
  msgs: ChatMessage[];
  last: number;
  ids: Map<string, ChatMessage>;
}

export class MemoryHistory implements History {
  readonly kind = 'memory';
  readonly epoch = newEpoch();
  private readonly logs = new Map<string, RoomLog>();

  constructor(private readonly limit = 10_000) {}

  private log(room: string): RoomLog {
    let l = this.logs.get(room);
    if (!l) this.logs.set(room, (l = { msgs: [], last: 0, ids: new Map() }));
    return l;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const l = this.log(input.room);
    const key = dedupeKey(input.from.user, input.id);
    const seen = l.ids.get(key);
    if (seen) return { message: seen, duplicate: true };
    const message: ChatMessage = { ...input, offset: l.last + 1, prev: l.last, epoch: this.epoch };
    l.last = message.offset;
    l.msgs.push(message);
    l.ids.set(key, message);
    while (l.msgs.length > this.limit) {
      const old = l.msgs.shift()!;
      l.ids.delete(dedupeKey(old.from.user, old.id));
    }
    return { message, duplicate: false };
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

  async close(): Promise<void> {}
}
