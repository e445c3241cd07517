/**
 * What JetStream does not do for a room (issue 11), for the JetStream History (history.ts):
 *
 * - **A byte bound per room.** JetStream limits bytes per stream, not per subject. Every stored
 *   message carries `cum`: the room's bytes up to and including it (the running sum of
 *   `storedBytes`, the measure every adapter uses). A room then holds
 *   `cum(newest) − cum(oldest) + size(oldest)` bytes, whatever count, age or other nodes trimmed
 *   meanwhile; past CONFAB_HISTORY_MAX_BYTES the oldest are purged (subject purge below the first
 *   sequence kept), the newest always kept. The oldest message known per room is cached, so a room
 *   under its bound costs no request; one at its bound costs a walk over what is dropped and a purge.
 * - **Ids remembered with their content.** JetStream's duplicate window keeps a trimmed message's
 *   id but not its content. Every append also writes the content hash, prev and time under the
 *   id's key in a KV bucket whose TTL is the dedupe window, so a reused id with other content is
 *   `duplicate_id_conflict` and a true resend is answered with the original prev and time, also
 *   after trimming.
 *
 * Messages stored before `cum` existed have none: a room whose oldest message has none is not
 * trimmed by bytes until count or age removed it (docs/retention.md).
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type pino from 'pino';
import { contentHash, storedBytes } from '../history/common.js';
import type { AppendInput } from '../history/types.js';

export interface RoomBoundsOptions {
  stream: string;
  /** CONFAB_HISTORY_MAX_BYTES per room (0: no byte bound). */
  roomMaxBytes: number;
  /** How long ids are remembered (the stream's duplicate window), seconds. */
  windowSec: number;
  replicas: number;
  storage: 'file' | 'memory';
  /** Placement of the id bucket: the stream's home region (NATS cluster), when it has one. */
  cluster?: string;
}

/** What the id store keeps for a message id. */
export interface RememberedId {
  hash: string;
  prev: number;
  ts: number;
}

/** A room's end points as this node last saw them. */
interface RoomEnds {
  lastSeq: number;
  lastCum: number;
  /** The oldest message known (may be gone meanwhile: the real oldest is never older). */
  firstSeq: number;
  /** cum − size of the oldest known: the room's bytes are cum(last) − base. */
  base: number;
}

/** Rooms whose end points are cached (a room that falls out is read again: two gets). */
const MAX_ROOMS = 50_000;
/** Without the id bucket (it could not be created or opened), try again at most this often. */
const KV_RETRY_MS = 30_000;

export class RoomBounds {
  private readonly ends = new Map<string, RoomEnds>();
  /** Messages purged for the byte bound (metrics, tests). */
  purged = 0;

  private kv: KV | undefined;
  private kvRetryAt = 0;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly o: RoomBoundsOptions,
    private readonly log: pino.Logger,
  ) {}

  /**
   * Open (create when missing) the id bucket `<stream>_ids`. Without it (a server without KV, or
   * JetStream not answering now) ids fall back to JetStream's window alone, and the bucket is tried
   * again at most every 30 s while appends go on.
   */
  static async open(js: JetStreamClient, jsm: JetStreamManager, o: RoomBoundsOptions, log: pino.Logger): Promise<RoomBounds> {
    const b = new RoomBounds(js, jsm, o, log);
    await b.openBucket();
    return b;
  }

  private async openBucket(): Promise<void> {
    this.kvRetryAt = Date.now() + KV_RETRY_MS;
    const kvm = new Kvm(this.js);
    const name = `${this.o.stream}_ids`;
    const opts = { ttl: this.o.windowSec * 1000, history: 1, replicas: this.o.replicas, storage: this.o.storage === 'memory' ? 'memory' : 'file', ...(this.o.cluster ? { placement: { cluster: this.o.cluster, tags: [] } } : {}) } as const;
    try {
      this.kv = await kvm.create(name, opts as never);
    } catch (e) {
      try {
        this.kv = await kvm.open(name);
      } catch {
        this.log.warn({ err: e, bucket: name }, 'no id bucket (tried again in 30 s): an id reused with other content after its message was trimmed is answered as a resend');
      }
    }
  }

  /** The id bucket, or undefined (and a new attempt started when the last one is old enough). */
  private bucket(): KV | undefined {
    if (!this.kv && Date.now() >= this.kvRetryAt) void this.openBucket();
    return this.kv;
  }

  private static key(msgID: string): string {
    return createHash('sha256').update(msgID).digest('hex').slice(0, 40);
  }

  /** Remember an id's content hash, prev and time (not awaited by the append: the next request on the connection follows it). */
  remember(msgID: string, input: AppendInput, prev: number): void {
    const kv = this.bucket();
    if (!kv) return;
    const v: RememberedId = { hash: contentHash(input), prev, ts: input.ts };
    kv.put(RoomBounds.key(msgID), JSON.stringify(v)).catch((err: unknown) => this.log.warn({ err }, 'could not remember a message id'));
  }

  /** What was remembered for an id whose message is gone, if anything. */
  async recall(msgID: string): Promise<RememberedId | undefined> {
    const kv = this.bucket();
    if (!kv) return undefined;
    const e = await kv.get(RoomBounds.key(msgID)).catch(() => null);
    if (!e || e.operation !== 'PUT') return undefined;
    try {
      return e.json<RememberedId>();
    } catch {
      return undefined;
    }
  }

  private cumOf(m: StoredMsg | null): number | undefined {
    if (!m) return undefined;
    try {
      const s = JSON.parse(new TextDecoder().decode(m.data)) as { cum?: unknown };
      return typeof s.cum === 'number' ? s.cum : undefined;
    } catch {
      return undefined;
    }
  }

  private sizeOf(m: StoredMsg): number {
    try {
      return storedBytes(JSON.parse(new TextDecoder().decode(m.data)) as AppendInput);
    } catch {
      return 0;
    }
  }

  /** `cum` for a new message of `size` bytes after the room's message `lastSeq` (0: the room is empty). */
  async cumAfter(room: string, lastSeq: number, size: number): Promise<number> {
    if (lastSeq <= 0) return size;
    const e = this.ends.get(room);
    if (e && e.lastSeq === lastSeq) return e.lastCum + size;
    const prev = this.cumOf(await this.jsm.streams.getMessage(this.o.stream, { seq: lastSeq }));
    return (prev ?? 0) + size;
  }

  /**
   * After `seq` (with `cum`) was stored: purge the room's oldest messages while it holds more than
   * its byte bound. Awaited by the append, so a read after the ack sees the room within its bound;
   * never fails it (the message is stored: a failed purge is logged and tried again by the next append).
   */
  async stored(room: string, subject: string, seq: number, cum: number): Promise<void> {
    try {
      await this.trim(room, subject, seq, cum);
    } catch (err) {
      this.ends.delete(room);
      this.log.warn({ err, room }, 'could not purge a room past its byte bound');
    }
  }

  private async trim(room: string, subject: string, seq: number, cum: number): Promise<void> {
    let e = this.ends.get(room);
    if (e) this.ends.delete(room); // re-inserted below: most recently used last
    if (!e || seq < e.lastSeq) e = { lastSeq: seq, lastCum: cum, firstSeq: 0, base: 0 };
    e.lastSeq = seq;
    e.lastCum = cum;
    this.ends.set(room, e);
    if (this.ends.size > MAX_ROOMS) this.ends.delete(this.ends.keys().next().value!);
    const max = this.o.roomMaxBytes;
    if (max <= 0) return;
    if (e.firstSeq > 0 && cum - e.base <= max) return; // the oldest known is never older than the real one: within the bound
    // walk from the oldest known (or the room's start) to the first message that leaves the room within its bound
    let m = await this.jsm.streams.getMessage(this.o.stream, { next_by_subj: subject, seq: Math.max(1, e.firstSeq) } as never);
    let dropped = 0;
    while (m && m.seq < seq) {
      const c = this.cumOf(m);
      if (c === undefined) return; // stored before `cum`: not bounded by bytes until it is gone
      const base = c - this.sizeOf(m);
      if (cum - base <= max) break;
      dropped++;
      m = await this.jsm.streams.getMessage(this.o.stream, { next_by_subj: subject, seq: m.seq + 1 } as never);
    }
    if (!m) return;
    const c = this.cumOf(m);
    if (c === undefined) return;
    e.firstSeq = m.seq;
    e.base = c - this.sizeOf(m);
    if (dropped > 0) {
      await this.jsm.streams.purge(this.o.stream, { filter: subject, seq: m.seq });
      this.purged += dropped;
    }
  }
}
