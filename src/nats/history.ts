/**
 * JetStream History: one stream, one subject per room (`<prefix>.hist.<room>`; a shard's
 * stream has its own subject base, src/nats/shards.ts routes each room to one).
 *
 * - Offsets are stream sequence numbers: strictly increasing per room, not
 *   contiguous, so every stored message carries `prev`, the room's previous
 *   offset. `prev` is exact because each append is published with
 *   `Nats-Expected-Last-Subject-Sequence: prev`; when another node appended
 *   meanwhile the server refuses (10071), we take the real last sequence and retry.
 *   On a clustered nats-server 2.9 that check runs against the applied state only,
 *   so two writers on different nodes can both pass it with the same `prev`; on a
 *   cluster the adapter therefore confirms every `prev` it hands out (after an
 *   append, and for the first message of a read) by walking the room's subject
 *   forward from the stored hint (`exactPrev`). Retention removes a room's
 *   oldest messages first, so a stored hint is never newer than the truth.
 * - Idempotency: `Nats-Msg-Id = <room>:<user>:<id>`; within the stream's
 *   duplicate window (CONFAB_DEDUPE_WINDOW_S, at most the max age) a resend is
 *   acknowledged with the original sequence, also when the message was trimmed
 *   meanwhile; other content under a stored id is duplicate_id_conflict (for a
 *   trimmed message by its content hash, kept in the id bucket: room-bounds.ts).
 * - Bytes per room: every message carries the room's running byte count (`cum`);
 *   room-bounds.ts purges the oldest past CONFAB_HISTORY_MAX_BYTES.
 * - Epoch: the stream's creation time; it changes only when the stream is recreated.
 * - Reads: see `replay` (direct gets or an ordered consumer, chosen by measurement, docs/nats.md).
 */
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import type pino from 'pino';
import type { ChatMessage, Sender } from '../protocol/frames.js';
import { ConfabError } from '../protocol/codes.js';
import { conflictError, contentHash, readResult, serial, storedBytes } from '../history/common.js';
import { Backoff, sleep } from '../shared/backoff.js';
import type { AppendInput, AppendResult, History, ReadResult, RoomInfo } from '../history/types.js';
import { isTransientNatsError } from './errors.js';
import type { NatsLink } from './link.js';
import { RoomBounds } from './room-bounds.js';
import { ensureStream, epochOf, legacyTarget, roomToken, tokenRoom, type StreamTarget } from './stream.js';

/** How replays fetch messages: per-message direct gets, or one ephemeral ordered consumer per read. */
export type ReplayMode = 'direct' | 'consumer';

const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;
/** A read's consumer is removed by the server this long after its last use, should its delete be lost. */
const CONSUMER_INACTIVE_MS = 10_000;
const MAX_ATTEMPTS = 100;
/** Append retries from the 4th attempt on: full jitter, caps 80, 160, 320, then 500 ms. */
const APPEND_BACKOFF = new Backoff({ minMs: 10, maxMs: 500 });
/** Lost expected-last-sequence races after which an append is stored without the check (see prevBefore). */
const LOOSE_AFTER_LOST_RACES = 2;

interface Stored {
  /** The previous offset; a hint never newer than the truth when `loose` (stored without the expected-sequence check). */
  prev: number;
  loose?: true;
  id: string;
  kind: 'msg' | 'alert';
  text: string;
  from: Sender;
  ts: number;
  /** The room's bytes up to and including this message (room-bounds.ts). */
  cum?: number;
}

export interface JetStreamHistoryOptions {
  node: string;
  /** Replay strategy; "auto" (default): direct gets below `directBelow` messages (default 16), an ordered consumer above (measured: src/bench/measure-nats-history.ts). */
  replay?: ReplayMode | 'auto';
  /** In 'auto' mode, reads of fewer than this many messages use direct gets. */
  directBelow?: number;
  /** CONFAB_HISTORY_MAX_BYTES: bytes per room (0 or absent: none). */
  roomMaxBytes?: number;
  /** The stream this history serves (default: the deployment's one stream, CONFAB_STREAM_NAME; src/nats/shards.ts makes others). */
  target?: StreamTarget;
}

export class JetStreamHistory implements History {
  readonly kind = 'nats';
  private _epoch = '';
  private readonly lastSeq = new Map<string, number>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly stream: string;
  private readonly target: StreamTarget;
  private readonly timeout: number;
  /** Appends retried because another writer got there first (metrics, tests). */
  conflicts = 0;
  /** Consumer reads that disagreed with the stream leader (a lagging or diverged replica) and were re-read from the leader. */
  divergentReads = 0;
  /** Read consumers whose delete failed (name -> stream), tried again with the epoch refresh. */
  private readonly leftovers = new Map<string, string>();
  private reads = 0;
  private readonly instance = Math.random().toString(36).slice(2, 8);
  /** The per-room byte bound and the id bucket (set by `open`). */
  bounds!: RoomBounds;

  private constructor(
    private readonly link: NatsLink,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: JetStreamHistoryOptions,
    private readonly log: pino.Logger,
  ) {
    this.target = opts.target ?? legacyTarget(link.settings.prefix, link.settings.stream);
    this.stream = this.target.settings.name;
    this.timeout = link.settings.requestTimeoutMs;
  }

  /** Ensure the stream exists with the configured settings, then serve. */
  static async open(link: NatsLink, opts: JetStreamHistoryOptions, log: pino.Logger): Promise<JetStreamHistory> {
    const timeout = link.settings.requestTimeoutMs;
    // no account-info probe: it is one more request that a leader election times out, and ensureStream retries
    const jsm = await jetstreamManager(link.nc, { timeout, checkAPI: false });
    const js = jetstream(link.nc, { timeout });
    const h = new JetStreamHistory(link, js, jsm, opts, log);
    const info = await ensureStream(jsm, h.target, log);
    h._epoch = epochOf(info);
    const st = link.settings.stream;
    h.bounds = await RoomBounds.open(js, jsm, { stream: h.stream, roomMaxBytes: opts.roomMaxBytes ?? 0, windowSec: st.duplicateWindowSec, replicas: st.replicas, storage: st.storage === 'memory' ? 'memory' : 'file', cluster: h.target.cluster }, log);
    link.acquire();
    h.timer = setInterval(() => {
      void h.refreshEpoch().catch(() => {});
      for (const [name, stream] of h.leftovers) void h.dropConsumer(stream, name);
    }, 30_000);
    h.timer.unref();
    // a stream created at this very moment by several nodes settles on one description: look again soon
    for (const ms of [1_000, 5_000]) setTimeout(() => void h.refreshEpoch().catch(() => {}), ms).unref();
    return h;
  }

  get epoch(): string {
    return this._epoch;
  }

  /** Re-read the stream's creation time; a new epoch drops every cached sequence. */
  async refreshEpoch(recreate = false): Promise<void> {
    const info = recreate ? await ensureStream(this.jsm, this.target, this.log) : await this.jsm.streams.info(this.stream);
    const epoch = epochOf(info);
    if (epoch !== this._epoch) {
      this.log.warn({ stream: this.stream, from: this._epoch, to: epoch }, 'history stream was recreated: new epoch');
      this._epoch = epoch;
      this.lastSeq.clear();
    }
  }

  private subject(room: string): string {
    if (typeof room !== 'string' || room.length === 0 || room.length > 256) throw new ConfabError('bad_room');
    return `${this.target.subjectBase}.${roomToken(room)}`;
  }

  private decode(room: string, m: StoredMsg): ChatMessage | undefined {
    return this.decodeRaw(room, m).msg;
  }

  /** The message, and whether its stored `prev` is only a hint (stored without the expected-sequence check). */
  private decodeRaw(room: string, m: StoredMsg): { msg?: ChatMessage; loose: boolean } {
    try {
      const s = JSON.parse(new TextDecoder().decode(m.data)) as Stored;
      if (typeof s.prev !== 'number' || typeof s.id !== 'string' || typeof s.text !== 'string' || !s.from) throw new Error('bad shape');
      return { msg: { room, offset: m.seq, prev: s.prev, epoch: this._epoch, id: s.id, kind: s.kind === 'alert' ? 'alert' : 'msg', text: s.text, from: s.from, ts: s.ts }, loose: s.loose === true };
    } catch (e) {
      this.log.warn({ err: e, room, seq: m.seq }, 'skipping a malformed history record');
      return { loose: false };
    }
  }

  private fail(e: unknown, what: string): never {
    if (e instanceof ConfabError) throw e;
    if (this.link.status !== 'up') throw new ConfabError('bus_unavailable', `${what}: NATS unavailable`, { cause: e });
    throw new ConfabError('store_failed', `${what}: ${(e as Error).message}`, { cause: e });
  }

  /** The room's newest sequence, read from the stream leader (0 when the room is empty). */
  private async fetchLast(subject: string): Promise<StoredMsg | null> {
    return await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
  }

  /**
   * `prev` for the first message of a room with nothing stored: 0 on a stream that never dropped
   * anything, else the stream's first sequence - 1. Retention drops messages in sequence order (age,
   * stream bytes; a room's count limit never empties it), so every offset a room had before it aged
   * out is below that: a reader that saw one is told the gap, never given a silent hole.
   */
  private async emptyRoomPrev(): Promise<number> {
    const info = await this.jsm.streams.info(this.stream);
    return Math.max(0, (info.state.first_seq || 1) - 1);
  }

  /** True when connected to a clustered server (where the expected-sequence check can race). */
  private get clustered(): boolean {
    return this.link.nc.info?.cluster !== undefined;
  }

  /**
   * The exact previous offset of the room's message at `seq`, given a stored hint
   * that is never newer than the truth: follow the subject forward from hint+1 (leader reads).
   */
  private async exactPrev(subject: string, seq: number, hint: number, force = false): Promise<number> {
    if (!this.clustered && !force) return hint;
    let prev = hint;
    for (let i = 0; i < 10_000; i++) {
      const m = await this.jsm.streams.getMessage(this.stream, { next_by_subj: subject, seq: prev + 1 } as never);
      if (!m || m.seq >= seq) return prev;
      prev = m.seq;
    }
    return prev;
  }

  /** This sender's message with this id among the room's newest (read from the leader), if stored. */
  private async findStored(input: AppendInput, subject: string, deadline: number, depth = 64): Promise<ChatMessage | undefined> {
    let m = await this.fetchLast(subject);
    for (let i = 0; m && i < depth && Date.now() < deadline; i++) {
      const { msg: c, loose } = this.decodeRaw(input.room, m);
      if (!c) return undefined;
      if (c.id === input.id && c.from.user === input.from.user) {
        c.prev = await this.exactPrev(subject, c.offset, c.prev, loose);
        return c;
      }
      if (c.prev <= 0) return undefined;
      m = await this.jsm.streams.getMessage(this.stream, { seq: c.prev });
      if (m && m.subject !== subject) return undefined;
    }
    return undefined;
  }

  /**
   * The room's message right before `seq`, read in one go (an ordered consumer from `hint`, which is
   * never newer than the truth): for appends stored without the expected-last-sequence check.
   */
  private async prevBefore(room: string, subject: string, seq: number, hint: number): Promise<number> {
    if (seq - hint <= 1) return hint;
    const msgs = await this.replayChecked(room, subject, hint, seq - hint, seq - 1, false);
    return msgs.at(-1)?.offset ?? hint;
  }

  /** Give every message after the first its exact prev (the one before it in the list), and the first one via exactPrev. */
  private async relink(subject: string, msgs: ChatMessage[], after: number): Promise<ChatMessage[]> {
    for (let i = 1; i < msgs.length; i++) msgs[i]!.prev = msgs[i - 1]!.offset;
    const f = msgs[0];
    // a hint above `after` already proves a hole; otherwise the exact value only sharpens `prev`
    if (f && f.prev < after) f.prev = await this.exactPrev(subject, f.offset, f.prev, true);
    return msgs;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    if (this.closed) throw new ConfabError('bus_unavailable', 'history is closed');
    const subject = this.subject(input.room);
    this.link.assertUp();
    return serial(this.tails, input.room, () => this.appendNow(input, subject));
  }

  private async appendNow(input: AppendInput, subject: string): Promise<AppendResult> {
    const msgID = `${roomToken(input.room)}:${input.from.user}:${input.id}`;
    let lastError: unknown;
    // retries are bounded in count and in time: past ~2 request timeouts the caller gets a typed
    // error (and may resend the same id, which dedupe makes safe) rather than silence
    const deadline = Date.now() + 2 * this.timeout;
    let lost = 0; // expected-last-sequence races lost by this append
    for (let attempt = 0; attempt < MAX_ATTEMPTS && (attempt === 0 || Date.now() < deadline); attempt++) {
      // full jitter, growing to 500 ms: a leader election (seconds) is ridden out within the deadline
      if (attempt > 2) await sleep(APPEND_BACKOFF.delay(attempt - 1));
      this.link.assertUp();
      try {
        if (lastError !== undefined) {
          // an earlier attempt may have been stored although its answer was lost; JetStream's own dedupe
          // (Nats-Msg-Id) can forget it across a leader change, so look before storing again
          const mine = await this.findStored(input, subject, deadline);
          if (mine) {
            if (mine.text !== input.text || mine.kind !== input.kind) throw conflictError(input);
            return { message: mine, duplicate: mine.ts !== input.ts };
          }
        }
        let lastSubj = this.lastSeq.get(input.room);
        if (lastSubj === undefined) lastSubj = (await this.fetchLast(subject))?.seq ?? 0;
        // a room with nothing stored (new, or all aged out) links its first message to the stream's floor
        const prev = lastSubj > 0 ? lastSubj : await this.emptyRoomPrev();
        // a writer that keeps losing the race (a slow link to the server while another node writes the room)
        // stops asking for it: its `prev` is then found after the fact, so every append makes progress
        const loose = lost >= LOOSE_AFTER_LOST_RACES;
        const cum = await this.bounds.cumAfter(input.room, lastSubj, storedBytes(input));
        const body: Stored = { prev, id: input.id, kind: input.kind, text: input.text, from: input.from, ts: input.ts, cum, ...(loose ? { loose: true as const } : {}) };
        const ack = await this.js.publish(subject, JSON.stringify(body), { msgID, ...(loose ? {} : { expect: { lastSubjectSequence: lastSubj } }), timeout: this.timeout });
        if (ack.duplicate) {
          const orig = await this.jsm.streams.getMessage(this.stream, { seq: ack.seq }).catch(() => null);
          const raw = orig && orig.subject === subject ? this.decodeRaw(input.room, orig) : undefined;
          const message = raw?.msg;
          if (!message) {
            // the original was trimmed by retention, but JetStream still remembers its id for the duplicate
            // window: its content hash, prev and time are in the id bucket (without them: offset - 1 bounds prev)
            const known = await this.bounds.recall(msgID);
            if (known && known.hash !== contentHash(input)) throw conflictError(input);
            return { message: { ...input, offset: ack.seq, prev: known?.prev ?? Math.max(0, ack.seq - 1), ts: known?.ts ?? input.ts, epoch: this._epoch }, duplicate: true };
          }
          if (message.text !== input.text || message.kind !== input.kind) throw conflictError(input);
          message.prev = await this.exactPrev(subject, message.offset, message.prev, raw.loose);
          // a retry of our own timed-out attempt is not a duplicate from the caller's point of view
          return { message, duplicate: !(lastError !== undefined && message.ts === input.ts && message.text === input.text) };
        }
        if (this.lastSeq.size > 100_000) this.lastSeq.clear();
        this.lastSeq.set(input.room, ack.seq);
        const exact = loose ? await this.prevBefore(input.room, subject, ack.seq, prev) : await this.exactPrev(subject, ack.seq, prev);
        if (exact !== prev) this.conflicts++;
        this.bounds.remember(msgID, input, exact);
        await this.bounds.stored(input.room, subject, ack.seq, cum);
        return { message: { ...input, offset: ack.seq, prev: exact, epoch: this._epoch }, duplicate: false };
      } catch (e) {
        if (e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE) {
          this.conflicts++;
          lost++;
          const m = /wrong last sequence: (\d+)/.exec(e.message);
          if (m) this.lastSeq.set(input.room, Number(m[1]));
          else this.lastSeq.delete(input.room);
          continue;
        }
        if (e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND) {
          await this.refreshEpoch(true).catch(() => {});
          continue;
        }
        if (e instanceof ConfabError) throw e;
        // timeouts / no responders (leader election, node restart): retry with the same msg id (dedupe makes it safe)
        lastError = e;
        this.lastSeq.delete(input.room);
        if (this.link.status !== 'up' || !isTransientNatsError(e)) break;
      }
    }
    this.fail(lastError ?? new Error('too many concurrent writers'), 'append');
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    const subject = this.subject(room);
    this.link.assertUp();
    try {
      const lastMsg = await this.fetchLast(subject);
      const last = lastMsg?.seq ?? 0;
      if (limit <= 0 || last <= after) return readResult(this._epoch, after, [], last, limit);
      const msgs = await this.relink(subject, await this.replay(room, subject, after, Math.floor(limit), last), after);
      return readResult(this._epoch, after, msgs, last, limit);
    } catch (e) {
      this.fail(e, 'read');
    }
  }

  /** Messages of `subject` with seq > after, ascending, at most `limit`, reading up to `last`. */
  private async replay(room: string, subject: string, after: number, limit: number, last: number): Promise<ChatMessage[]> {
    const mode = this.opts.replay ?? 'auto';
    const useDirect = mode === 'direct' || (mode === 'auto' && Math.min(limit, last - after) < (this.opts.directBelow ?? 16));
    if (useDirect) return this.replayDirect(room, subject, after, limit, last);
    try {
      return await this.replayChecked(room, subject, after, limit, last);
    } catch (e) {
      if (this.link.status !== 'up') throw e;
      this.log.warn({ err: e, room }, 'consumer replay failed; falling back to direct gets');
      return this.replayDirect(room, subject, after, limit, last);
    }
  }

  private async replayDirect(room: string, subject: string, after: number, limit: number, last: number): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    let cursor = after + 1;
    while (out.length < limit && cursor <= last) {
      // single server: a direct get; on a cluster only the leader answers: a replica that was just frozen
      // or cut off can lag, or hold a different message at a sequence (a deposed leader's uncommitted tail)
      let m = this.clustered ? null : await this.jsm.direct.getMessage(this.stream, { next_by_subj: subject, seq: cursor });
      if (!m || m.seq > last) m = await this.jsm.streams.getMessage(this.stream, { next_by_subj: subject, seq: cursor } as never);
      if (!m || m.seq > last) break;
      const c = this.decode(room, m);
      if (c) out.push(c);
      cursor = m.seq + 1;
    }
    return out;
  }

  /** A consumer replay, checked against the stream leader on a cluster and re-read from it when they disagree. */
  private async replayChecked(room: string, subject: string, after: number, limit: number, last: number, lastIsExact = true): Promise<ChatMessage[]> {
    const msgs = await this.replayConsumer(room, subject, after, limit, last);
    if (!this.clustered || (await this.leaderAgrees(subject, msgs, limit, lastIsExact ? last : undefined))) return msgs;
    // the consumer sits on a replica that lags or diverged (nats-server 2.9 can leave a deposed, frozen
    // leader holding messages at other sequences than the leader): read this one from the leader instead
    this.divergentReads++;
    this.log.warn({ room, after, got: msgs.length, first: msgs[0]?.offset, last: msgs.at(-1)?.offset, leaderLast: last }, 'a replica-served replay disagrees with the stream leader; reading from the leader');
    return this.replayDirect(room, subject, after, limit, last);
  }

  /**
   * Whether a consumer-served read matches the stream leader: it must end at the room's last sequence
   * (`last`, when known exactly) unless it stopped at `limit`, and its first and last messages must be the leader's at those sequences
   * (a replica whose sequences diverged shifts every later message, so the ends show it).
   */
  private async leaderAgrees(subject: string, msgs: ChatMessage[], limit: number, last: number | undefined): Promise<boolean> {
    const tail = msgs.at(-1);
    if (!tail) return last === undefined; // with an exact last, the leader has messages in the range
    if (last !== undefined && msgs.length < limit && tail.offset !== last) return false;
    for (const c of tail === msgs[0] ? [tail] : [msgs[0]!, tail]) {
      const m = await this.jsm.streams.getMessage(this.stream, { seq: c.offset }).catch(() => null);
      if (!m || m.subject !== subject) return false;
      const at = this.decode(c.room, m);
      if (!at || at.id !== c.id || at.from.user !== c.from.user) return false;
    }
    return true;
  }

  /**
   * One read through a short-lived pull consumer of our own (an ordered consumer would ask for the stream info
   * first and get a 5-minute inactive threshold, whatever is asked). Its delete is retried later when it fails
   * (during a leader election): on nats-server 2.9 a consumer made then can stay "not current" and fail every
   * server's /healthz until it is gone.
   */
  private async replayConsumer(room: string, subject: string, after: number, limit: number, last: number): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    const name = `confab_${this.opts.node}_${this.instance}${(++this.reads).toString(36)}`;
    const ci = await this.jsm.consumers.add(this.stream, {
      name,
      filter_subject: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      num_replicas: 1,
      mem_storage: true,
      inactive_threshold: CONSUMER_INACTIVE_MS * 1_000_000, // nanoseconds
    });
    try {
      const it = await this.js.consumers.getConsumerFromInfo(ci).fetch({ max_messages: limit, expires: this.timeout });
      for await (const m of it) {
        if (m.seq > last) break;
        const msg = this.decode(room, { subject: m.subject, seq: m.seq, data: m.data } as StoredMsg);
        if (msg) out.push(msg);
        if (m.seq >= last || out.length >= limit) break;
      }
    } finally {
      void this.dropConsumer(this.stream, name);
    }
    return out;
  }

  /** Delete a read's consumer; one that cannot be deleted now is tried again every 30 s until it is gone. */
  private async dropConsumer(stream: string, name: string): Promise<void> {
    try {
      await this.jsm.consumers.delete(stream, name);
      this.leftovers.delete(name);
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND) this.leftovers.delete(name);
      else if (this.leftovers.size < 10_000) this.leftovers.set(name, stream);
    }
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    const subject = this.subject(room);
    this.link.assertUp();
    try {
      const lastMsg = await this.fetchLast(subject);
      const last = lastMsg?.seq ?? 0;
      const out: ChatMessage[] = [];
      if (lastMsg && limit > 0) {
        const first = this.decodeRaw(room, lastMsg);
        let hinted = first.loose; // a stored prev that is only a hint can skip a message
        if (first.msg) out.push(first.msg);
        // walk back along `prev`; a missing link means older messages are gone
        let prev = first.msg?.prev ?? 0;
        while (out.length < limit && prev > 0) {
          let m = this.clustered ? null : await this.jsm.direct.getMessage(this.stream, { seq: prev });
          if (!m) m = await this.jsm.streams.getMessage(this.stream, { seq: prev });
          if (!m || m.subject !== subject) break;
          const c = this.decodeRaw(room, m);
          if (!c.msg) break;
          hinted ||= c.loose;
          out.push(c.msg);
          prev = c.msg.prev;
        }
        out.reverse();
        if ((this.clustered || hinted) && out.length > 0) {
          // a racy or hinted stored prev can skip a message: read forward from the oldest visited and keep the newest `limit`
          const start = out[0]!.offset - 1;
          const fwd = await this.replay(room, subject, start, limit * 2 + 64, last);
          if (fwd.length > 0 && fwd[fwd.length - 1]!.offset === last) {
            const kept = fwd.slice(-limit);
            return { epoch: this._epoch, messages: await this.relink(subject, kept, Number.MAX_SAFE_INTEGER), last, more: false };
          }
        }
      }
      return { epoch: this._epoch, messages: out, last, more: false };
    } catch (e) {
      this.fail(e, 'recent');
    }
  }

  async info(room: string): Promise<RoomInfo> {
    const subject = this.subject(room);
    this.link.assertUp();
    try {
      const [lastMsg, firstMsg] = await Promise.all([
        this.fetchLast(subject),
        this.jsm.streams.getMessage(this.stream, { next_by_subj: subject, seq: 1 } as never),
      ]);
      return { epoch: this._epoch, first: firstMsg?.seq ?? 0, last: lastMsg?.seq ?? 0 };
    } catch (e) {
      this.fail(e, 'info');
    }
  }

  async rooms(): Promise<string[]> {
    this.link.assertUp();
    try {
      const info = await this.jsm.streams.info(this.stream, { subjects_filter: `${this.target.subjectBase}.>` });
      const pre = `${this.target.subjectBase}.`;
      return Object.keys(info.state.subjects ?? {}).filter((s) => s.startsWith(pre)).map((s) => tokenRoom(s.slice(pre.length)));
    } catch (e) {
      this.fail(e, 'rooms');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.tails.values()]);
    await this.link.release();
  }
}
