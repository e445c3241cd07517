/**
 * Embedded history on local disk (LMDB via the `lmdb` package): the default
 * store of `npm start`. One environment under `<dataDir>/history`; sub-databases
 * for messages ([room, offset] → message), room heads and dedupe ids.
 *
 * Durability (G8), `durability` option (CONFAB_DURABILITY):
 *  - 'flush' (default): append resolves once the transaction is committed AND
 *    flushed to disk (fsync): it survives kill -9 and power loss.
 *  - 'commit': append resolves once committed (visible, in the OS page cache):
 *    it survives kill -9 of the process, not a machine crash or power loss.
 * LMDB commits in a background thread and batches concurrent appends into one
 * transaction (and flushes overlap the next transaction), so either mode keeps
 * throughput with many writers. Offsets are contiguous per room from 1; the
 * epoch is made when the store is created and changes only if it is deleted.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage } from '../protocol/frames.js';
import { dedupeKey, newEpoch, readResult } from './common.js';
import type { AppendInput, AppendResult, History, ReadResult, RoomInfo } from './types.js';

interface Head {
  first: number;
  last: number;
}

const MAX = Number.MAX_SAFE_INTEGER;

export interface LmdbHistoryOptions {
  dataDir: string;
  /** Messages kept per room (older ones are trimmed, with their dedupe ids). */
  limit: number;
  /** When an append resolves: after the commit is flushed to disk (default) or once committed. */
  durability?: 'flush' | 'commit';
}

export class LmdbHistory implements History {
  readonly kind = 'lmdb';
  readonly epoch: string;
  private readonly root: RootDatabase;
  private readonly msgs: Database<ChatMessage, [string, number]>;
  private readonly heads: Database<Head, string>;
  private readonly ids: Database<number, string>;
  private readonly limit: number;
  private readonly flush: boolean;

  constructor(opts: LmdbHistoryOptions) {
    const path = join(opts.dataDir, 'history');
    mkdirSync(path, { recursive: true });
    this.limit = opts.limit;
    this.root = open({ path });
    this.flush = opts.durability !== 'commit';
    this.msgs = this.root.openDB('msgs', {});
    this.heads = this.root.openDB('heads', {});
    this.ids = this.root.openDB('ids', {});
    const meta = this.root.openDB<string, string>('meta', {});
    let epoch = meta.get('epoch');
    if (!epoch) {
      epoch = newEpoch();
      meta.putSync('epoch', epoch);
    }
    this.epoch = epoch;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const key = `${input.room}\u0000${dedupeKey(input.from.user, input.id)}`;
    let result: AppendResult | undefined;
    try {
      await this.root.transaction(() => {
        const seen = this.ids.get(key);
        if (seen !== undefined) {
          const m = this.msgs.get([input.room, seen]);
          if (m) {
            result = { message: m, duplicate: true };
            return;
          }
        }
        const head = this.heads.get(input.room) ?? { first: 0, last: 0 };
        const message: ChatMessage = { ...input, offset: head.last + 1, prev: head.last, epoch: this.epoch };
        this.msgs.putSync([input.room, message.offset], message);
        this.ids.putSync(key, message.offset);
        const next: Head = { first: head.first || message.offset, last: message.offset };
        while (next.last - next.first + 1 > this.limit) {
          const old = this.msgs.get([input.room, next.first]);
          if (old) this.ids.removeSync(`${input.room}\u0000${dedupeKey(old.from.user, old.id)}`);
          this.msgs.removeSync([input.room, next.first]);
          next.first++;
        }
        this.heads.putSync(input.room, next);
        result = { message, duplicate: false };
      });
      if (this.flush && result && !result.duplicate) await this.root.flushed;
    } catch (err) {
      throw new ConfabError('store_failed', undefined, { cause: err });
    }
    if (!result) throw new ConfabError('store_failed', 'transaction produced no result');
    return result;
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    const head = this.heads.get(room) ?? { first: 0, last: 0 };
    const messages: ChatMessage[] = [];
    for (const { value } of this.msgs.getRange({ start: [room, after + 1], end: [room, MAX], limit })) messages.push(value);
    return readResult(this.epoch, after, messages, head.last, limit);
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    const head = this.heads.get(room) ?? { first: 0, last: 0 };
    const messages: ChatMessage[] = [];
    if (limit > 0) {
      for (const { value } of this.msgs.getRange({ start: [room, MAX], end: [room, 0], limit, reverse: true })) messages.push(value);
      messages.reverse();
    }
    return { epoch: this.epoch, messages, last: head.last, more: false };
  }

  async info(room: string): Promise<RoomInfo> {
    const head = this.heads.get(room) ?? { first: 0, last: 0 };
    return { epoch: this.epoch, first: head.first, last: head.last };
  }

  async rooms(): Promise<string[]> {
    const out: string[] = [];
    for (const key of this.heads.getKeys({ limit: 1000 })) out.push(key);
    return out;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
