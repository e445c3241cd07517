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
 *
 * Retention (types.ts Retention): count and bytes are trimmed in the append's
 * transaction; age, expired ids and forgotten rooms by `sweep()` (every
 * CONFAB_HISTORY_SWEEP_MS). A forgotten room's last offset raises a floor kept in
 * `meta`, so a room made again never reuses an offset. LMDB never shrinks its
 * file: freed pages are reused, so the file stays at the high-water mark of live
 * data (docs/retention.md gives the bound).
 */
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage } from '../protocol/frames.js';
import { conflictError, contentHash, dedupeKey, fromRecord, newEpoch, readResult, storedBytes } from './common.js';
import { roomKeepMs } from './retention.js';
import { DEFAULT_RETENTION, type AppendInput, type AppendResult, type History, type ReadResult, type Retention, type RoomInfo } from './types.js';

interface Head {
  first: number;
  last: number;
  /** Stored bytes of the room (absent in stores written before byte retention: counted from then on). */
  bytes?: number;
  /** Newest message time (ms). */
  ts?: number;
}

/** An idempotency key: offset, prev, time, content hash, expiry (a bare number in stores from before the window). */
interface IdRec {
  o: number;
  p: number;
  t: number;
  h: string;
  e: number;
}

const empty = (h: Head) => h.first === 0 || h.first > h.last;

const MAX = Number.MAX_SAFE_INTEGER;

export interface LmdbHistoryOptions {
  dataDir: string;
  /** Messages kept per room (older ones are trimmed; their ids are kept for the dedupe window). */
  limit: number;
  /** Age, bytes and dedupe window (defaults: DEFAULT_RETENTION). */
  retention?: Partial<Omit<Retention, 'limit'>>;
  /** Run `sweep()` this often (ms); 0/undefined: only when called. */
  sweepMs?: number;
  /** When an append resolves: after the commit is flushed to disk (default) or once committed. */
  durability?: 'flush' | 'commit';
}

export class LmdbHistory implements History {
  readonly kind = 'lmdb';
  readonly epoch: string;
  private readonly root: RootDatabase;
  private readonly msgs: Database<ChatMessage, [string, number]>;
  private readonly heads: Database<Head, string>;
  private readonly ids: Database<number | IdRec, string>;
  private readonly meta: Database<string | number, string>;
  private readonly r: Retention;
  private readonly flush: boolean;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(opts: LmdbHistoryOptions) {
    const path = join(opts.dataDir, 'history');
    mkdirSync(path, { recursive: true, mode: 0o700 }); // CONFAB_DATA_DIR and its history: the owner's only
    this.r = { ...DEFAULT_RETENTION, ...opts.retention, limit: opts.limit };
    this.root = open({ path });
    privateFiles(path);
    this.flush = opts.durability !== 'commit';
    this.msgs = this.root.openDB('msgs', {});
    this.heads = this.root.openDB('heads', {});
    this.ids = this.root.openDB('ids', {});
    const meta = (this.meta = this.root.openDB<string | number, string>('meta', {}));
    let epoch = meta.get('epoch') as string | undefined;
    if (!epoch) {
      epoch = newEpoch();
      meta.putSync('epoch', epoch);
    }
    this.epoch = epoch;
    if (opts.sweepMs) {
      this.timer = setInterval(() => void this.sweep().catch(() => undefined), opts.sweepMs);
      this.timer.unref();
    }
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const key = `${input.room}\u0000${dedupeKey(input.from.user, input.id)}`;
    const hash = contentHash(input);
    const size = storedBytes(input);
    let result: AppendResult | undefined;
    let conflict = false;
    try {
      await this.root.transaction(() => {
        const now = Date.now();
        const seen = this.ids.get(key);
        if (seen !== undefined) {
          const rec: IdRec | undefined = typeof seen === 'number' ? undefined : seen;
          const off = typeof seen === 'number' ? seen : seen.o;
          const m = this.msgs.get([input.room, off]);
          if (rec === undefined ? m !== undefined : rec.e > now) {
            if (rec ? rec.h !== hash : m!.text !== input.text || m!.kind !== input.kind) {
              conflict = true;
              return;
            }
            result = { message: m ?? fromRecord(input, { offset: rec!.o, prev: rec!.p, ts: rec!.t, hash }, this.epoch), duplicate: true };
            return;
          }
        }
        const head = this.heads.get(input.room) ?? { first: 0, last: Number(this.meta.get('floor') ?? 0) };
        const message: ChatMessage = { ...input, offset: head.last + 1, prev: head.last, epoch: this.epoch };
        this.msgs.putSync([input.room, message.offset], message);
        this.ids.putSync(key, { o: message.offset, p: message.prev, t: input.ts, h: hash, e: now + this.r.dedupeWindowMs });
        const fresh = empty(head);
        const next: Head = { first: fresh ? message.offset : head.first, last: message.offset, bytes: (fresh ? 0 : (head.bytes ?? 0)) + size, ts: Math.max(head.ts ?? 0, input.ts) };
        while (next.last - next.first + 1 > this.r.limit || (this.r.maxBytes > 0 && next.bytes! > this.r.maxBytes && next.first < next.last)) {
          const old = this.msgs.get([input.room, next.first]);
          if (old) next.bytes = Math.max(0, next.bytes! - storedBytes(old));
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
    if (conflict) throw conflictError(input);
    if (!result) throw new ConfabError('store_failed', 'transaction produced no result');
    return result;
  }

  /**
   * Retention by age, expired ids and forgotten rooms. Each room in its own write transaction
   * (appends go on in between); returns what it removed.
   */
  async sweep(now = Date.now()): Promise<{ messages: number; ids: number; rooms: number }> {
    const out = { messages: 0, ids: 0, rooms: 0 };
    const cutoff = now - this.r.maxAgeMs;
    const keep = roomKeepMs(this.r);
    for (const room of [...this.heads.getKeys()]) {
      if (!this.needsSweep(room, now, cutoff, keep)) continue;
      await this.root.transaction(() => {
        const head = this.heads.get(room);
        if (!head) return;
        if (this.r.maxAgeMs > 0) {
          let changed = false;
          while (!empty(head)) {
            const m = this.msgs.get([room, head.first]);
            if (m && m.ts >= cutoff) break;
            if (m) head.bytes = Math.max(0, (head.bytes ?? 0) - storedBytes(m));
            this.msgs.removeSync([room, head.first]);
            head.first++;
            out.messages++;
            changed = true;
          }
          if (changed) this.heads.putSync(room, head);
        }
        for (const { key, value } of this.ids.getRange({ start: `${room}\u0000`, end: `${room}\u0001` })) {
          const gone = typeof value === 'number' ? this.msgs.get([room, value]) === undefined : value.e <= now;
          if (gone) {
            this.ids.removeSync(key);
            out.ids++;
          }
        }
        if (this.r.maxAgeMs > 0 && empty(head) && (head.ts ?? 0) < now - keep && this.ids.getKeysCount({ start: `${room}\u0000`, end: `${room}\u0001` }) === 0) {
          this.meta.putSync('floor', Math.max(Number(this.meta.get('floor') ?? 0), head.last));
          this.heads.removeSync(room);
          out.rooms++;
        }
      });
    }
    return out;
  }

  /** A read-only look: is there anything for `sweep` to do in this room? */
  private needsSweep(room: string, now: number, cutoff: number, keep: number): boolean {
    const head = this.heads.get(room);
    if (!head) return false;
    if (this.r.maxAgeMs > 0) {
      if (empty(head)) {
        if ((head.ts ?? 0) < now - keep) return true;
      } else {
        const oldest = this.msgs.get([room, head.first]);
        if (!oldest || oldest.ts < cutoff) return true;
      }
    }
    for (const { value } of this.ids.getRange({ start: `${room}\u0000`, end: `${room}\u0001` })) if (typeof value === 'number' || value.e <= now) return true;
    return false;
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
    return { epoch: this.epoch, first: empty(head) ? 0 : head.first, last: head.last };
  }

  async rooms(): Promise<string[]> {
    const out: string[] = [];
    for (const key of this.heads.getKeys({ limit: 1000 })) out.push(key);
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.root.close();
  }
}

/** The store's files readable by their owner only (0600; LMDB creates them with the umask's mode). */
function privateFiles(path: string): void {
  try {
    for (const name of statSync(path).isDirectory() ? readdirSync(path) : []) {
      const f = join(path, name);
      if (statSync(f).isFile()) chmodSync(f, 0o600);
    }
  } catch {
    // a file system without modes: nothing to tighten
  }
}
