/**
 * History on Redis Streams: one stream per room, offsets contiguous from 1
 * (stream ids "<offset>-0"), each append one Lua script that dedupes, assigns
 * offset and prev, and trims to the history limit (exact MAXLEN), atomically.
 *
 * Durability (G8, docs/redis.md): append resolves once Redis executed the
 * script, i.e. the message is in Redis memory (and, with
 * CONFAB_REDIS_WAIT_REPLICAS=N, acknowledged by N replicas). What survives a
 * Redis crash is what Redis' own persistence settings say; the epoch policy
 * makes sure a restart that may have lost acknowledged messages changes the
 * epoch, so clients are told `reset` instead of resuming over reused offsets.
 */
import type { Redis } from 'ioredis';
import type pino from 'pino';
import type { BusStatus } from '../bus/types.js';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage } from '../protocol/frames.js';
import { conflictError, contentHash, fromRecord, newEpoch, readResult } from '../history/common.js';
import { roomKeepMs } from '../history/retention.js';
import type { AppendInput, AppendResult, History, ReadResult, RoomInfo } from '../history/types.js';
import { connectReady, logConnectionErrors, openConnection, quitConnection, startHealthPings, typedError } from './connection.js';
import type { RedisSettings } from './options.js';
import { APPEND_LUA, FORGET_LUA, READ_LUA, keyPart } from './scripts.js';

type Entry = [id: string, fields: string[]];
type ReadReply = [epoch: string, last: string, entries: Entry[]];
type AppendReply = [dup: number, offset: string, prev: string, epoch: string, body?: string, hash?: string, ts?: string];

interface ScriptedRedis extends Redis {
  confabAppend(...args: string[]): Promise<AppendReply>;
  confabRead(...args: string[]): Promise<ReadReply>;
  confabForget(...args: string[]): Promise<number>;
}

/**
 * Fields kept in the stream entry's JSON (room is the key's, ts the entry's `t` field; entries written
 * before retention also carry room and ts in the JSON). Its byte length counts against CONFAB_HISTORY_MAX_BYTES.
 */
type Body = Pick<ChatMessage, 'id' | 'kind' | 'text' | 'from'> & { room?: string; ts?: number };

export class RedisHistory implements History {
  readonly kind = 'redis';
  /** Resolved epoch policy: 'keep' or 'restart'. */
  epochPolicy: 'keep' | 'restart' = 'restart';
  private closed: Promise<void> | undefined;
  private stopPings: () => void = () => {};
  /** Bumped whenever the connection drops or comes back. */
  private gen = 0;
  /** The server's run_id, read on the current connection right after it became ready. */
  private runId: Promise<string> | undefined;
  private readonly statusListeners = new Set<(s: BusStatus) => void>();
  private lastStatus: BusStatus = 'down';

  private constructor(
    private readonly conn: ScriptedRedis,
    private readonly s: RedisSettings,
    private readonly log: pino.Logger,
  ) {
    logConnectionErrors(conn, log, 'hist');
    conn.on('ready', () => {
      this.gen++;
      this.runId = conn.info('server').then((txt) => /run_id:(\w+)/.exec(txt)?.[1] ?? '');
      this.runId.catch(() => undefined);
      this.updateStatus();
    });
    for (const ev of ['close', 'end', 'reconnecting']) {
      conn.on(ev, () => {
        this.gen++;
        this.runId = undefined;
        this.updateStatus();
      });
    }
    conn.defineCommand('confabAppend', { numberOfKeys: 8, lua: APPEND_LUA });
    conn.defineCommand('confabRead', { numberOfKeys: 4, lua: READ_LUA });
    conn.defineCommand('confabForget', { numberOfKeys: 5, lua: FORGET_LUA });
  }

  /** Connect, resolve the epoch policy, and make sure the epoch exists. */
  static async open(s: RedisSettings, log: pino.Logger, node: string): Promise<RedisHistory> {
    const h = new RedisHistory(openConnection(s, `confab-${node}-hist`) as ScriptedRedis, s, log);
    await connectReady(h.conn, s, 'history');
    try {
      h.epochPolicy = s.epochPolicy === 'auto' ? await autoPolicy(h.conn) : s.epochPolicy;
      if (h.epochPolicy === 'restart' && (await h.runId) === '') log.warn('INFO server is not allowed: Redis restarts cannot be detected, the epoch changes only if Redis loses everything');
      await warnOnEviction(h.conn, log);
      const epoch = (await h.run(h.key('x'), '', 'epoch', '0', '0'))[0];
      log.info({ epoch, epochPolicy: h.epochPolicy, prefix: s.prefix }, 'redis history ready');
      h.stopPings = startHealthPings([h.conn], s, log);
      return h;
    } catch (e) {
      h.conn.disconnect(false);
      throw typedError(e, 'history open');
    }
  }

  /**
   * Arguments every script needs after the keys: policy, a candidate epoch and the run_id of
   * the server this connection talks to. Resolves only while the connection that read the
   * run_id is still the current one; the caller must send its command synchronously after.
   */
  private async epochArgs(): Promise<() => [string, string, string]> {
    if (this.closed) throw new ConfabError('bus_unavailable', 'history is closed');
    const gen = this.gen;
    const runP = this.runId;
    if (this.conn.status !== 'ready' || !runP) throw new ConfabError('bus_unavailable', 'redis history connection is down');
    let run: string;
    try {
      run = this.epochPolicy === 'restart' ? await runP : '';
    } catch (err) {
      throw typedError(err, 'info');
    }
    return () => {
      if (gen !== this.gen || this.conn.status !== 'ready') throw new ConfabError('bus_unavailable', 'redis history connection changed; retry');
      return [this.epochPolicy, newEpoch(), run];
    };
  }

  private key(room: string): string {
    return `${this.s.prefix}:hist:${keyPart(room)}`;
  }

  private assertOpen(): void {
    if (this.closed) throw new ConfabError('bus_unavailable', 'history is closed');
    if (this.conn.status !== 'ready') throw new ConfabError('bus_unavailable', 'redis history connection is down');
  }

  private async run(stream: string, room: string, mode: string, a: string, b: string): Promise<ReadReply> {
    const args = await this.epochArgs();
    const p = this.s.prefix;
    try {
      return await this.conn.confabRead(stream, `${p}:epoch`, `${p}:epoch:run`, `${p}:rooms`, room, mode, a, b, ...args());
    } catch (err) {
      throw typedError(err, `read ${mode}`);
    }
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const args = await this.epochArgs();
    const p = this.s.prefix;
    const r = this.s.retention;
    const body: Body = { id: input.id, kind: input.kind, text: input.text, from: input.from };
    const json = JSON.stringify(body);
    const hash = contentHash(input);
    const dedupe = `${p}:id:${keyPart(input.room)}:${keyPart(input.from.user)}:${keyPart(input.id)}`;
    let res: AppendReply;
    try {
      const [policy, candidate, run] = args();
      res = await this.conn.confabAppend(
        this.key(input.room), dedupe, `${p}:epoch`, `${p}:epoch:run`, `${p}:rooms`, `${p}:bytes`, `${p}:floor`, `${p}:active`,
        input.room, json, String(r.limit), String(r.dedupeWindowMs), policy, candidate, run,
        hash, String(Buffer.byteLength(json)), String(input.ts), String(r.maxAgeMs), String(r.maxBytes),
      );
    } catch (err) {
      throw typedError(err, 'append');
    }
    const [dup, offset, prev, epoch, stored, storedHash, storedTs] = res;
    if (this.s.waitReplicas > 0) await this.waitReplicas(Number(offset));
    if (dup === 1) {
      const kept = stored ? this.message(input.room, `${offset}-0`, stored, prev, epoch, storedTs) : undefined;
      // a key from before the window has no hash: compare with the stored message
      if (storedHash ? storedHash !== hash : kept !== undefined && (kept.text !== input.text || kept.kind !== input.kind)) throw conflictError(input);
      return { message: kept ?? fromRecord(input, { offset: Number(offset), prev: Number(prev), ts: Number(storedTs ?? input.ts), hash }, epoch), duplicate: true };
    }
    return { message: { ...input, offset: Number(offset), prev: Number(prev), epoch }, duplicate: false };
  }

  /**
   * Forget rooms idle past max(max age, dedupe window) whose messages all aged out (their stream key
   * expired): their counter and byte total go, the floor keeps their offsets from coming back. Runs
   * every CONFAB_HISTORY_SWEEP_MS; age and count are trimmed by the append itself.
   */
  async sweep(now = Date.now()): Promise<{ messages: number; ids: number; rooms: number }> {
    const out = { messages: 0, ids: 0, rooms: 0 };
    const r = this.s.retention;
    if (r.maxAgeMs <= 0) return out;
    this.assertOpen();
    const p = this.s.prefix;
    const cutoff = now - roomKeepMs(r);
    try {
      for (let i = 0; i < 100; i++) {
        const rooms = await this.conn.zrangebyscore(`${p}:active`, '-inf', `(${cutoff}`, 'LIMIT', 0, 500);
        let forgot = 0;
        for (const room of rooms) forgot += await this.conn.confabForget(this.key(room), `${p}:rooms`, `${p}:bytes`, `${p}:floor`, `${p}:active`, room, String(cutoff));
        out.rooms += forgot;
        if (rooms.length < 500 || forgot === 0) break;
      }
    } catch (err) {
      throw typedError(err, 'sweep');
    }
    return out;
  }

  /** WAIT for the configured replicas; fewer in time = store_failed (a retry with the same id returns the stored message). */
  private async waitReplicas(offset: number): Promise<void> {
    let acked: number;
    try {
      acked = Number(await this.conn.wait(this.s.waitReplicas, this.s.waitTimeoutMs));
    } catch (err) {
      throw typedError(err, 'wait');
    }
    if (acked < this.s.waitReplicas) {
      this.log.warn({ offset, acked, wanted: this.s.waitReplicas }, 'redis append not replicated in time');
      throw new ConfabError('store_failed', `stored on the primary but acknowledged by ${acked} of ${this.s.waitReplicas} replicas; retry with the same id`);
    }
  }

  private message(room: string, id: string, body: string, prev: string, epoch: string, ts: string | undefined): ChatMessage {
    let b: Body;
    try {
      b = JSON.parse(body) as Body;
    } catch (err) {
      throw new ConfabError('store_failed', `corrupt stream entry ${id}`, { cause: err });
    }
    return { room, id: b.id, kind: b.kind, text: b.text, from: b.from, ts: ts !== undefined ? Number(ts) : (b.ts ?? 0), offset: Number(id.slice(0, id.indexOf('-'))), prev: Number(prev), epoch };
  }

  private messages(room: string, entries: Entry[]): ChatMessage[] {
    return entries.map(([id, f]) => this.message(room, id, f[1] ?? '', f[3] ?? '0', '', f[5]));
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    const from = Math.max(0, Math.floor(Number.isFinite(after) ? after : 0));
    const n = Math.floor(limit);
    if (!(n > 0)) {
      const { epoch, last } = await this.info(room);
      return { epoch, messages: [], last, more: false };
    }
    const [epoch, last, entries] = await this.run(this.key(room), room, 'after', String(from + 1), String(n));
    const msgs = this.messages(room, entries).map((m) => ({ ...m, epoch }));
    return readResult(epoch, from, msgs, Number(last), n);
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    const n = Math.floor(limit);
    const [epoch, last, entries] = await this.run(this.key(room), room, n > 0 ? 'recent' : 'info', String(Math.max(n, 1)), '0');
    const msgs = n > 0 ? this.messages(room, entries).reverse().map((m) => ({ ...m, epoch })) : [];
    return { epoch, messages: msgs, last: Number(last), more: false };
  }

  async info(room: string): Promise<RoomInfo> {
    const [epoch, last, entries] = await this.run(this.key(room), room, 'info', '0', '0');
    const first = entries[0] ? Number(entries[0][0].slice(0, entries[0][0].indexOf('-'))) : 0;
    return { epoch, first, last: Number(last) };
  }

  async rooms(): Promise<string[]> {
    this.assertOpen();
    const out: string[] = [];
    let cursor = '0';
    try {
      do {
        const [next, flat] = await this.conn.hscan(`${this.s.prefix}:rooms`, cursor, 'COUNT', 500);
        for (let i = 0; i < flat.length; i += 2) out.push(flat[i]!);
        cursor = next;
      } while (cursor !== '0' && out.length < 1000);
    } catch (err) {
      throw typedError(err, 'rooms');
    }
    return out.slice(0, 1000);
  }

  /** 'up' while open and the command connection is ready. A gateway whose bus is on another broker follows it (src/adapters.ts). */
  get status(): BusStatus {
    return this.closed === undefined && this.conn.status === 'ready' ? 'up' : 'down';
  }

  /** Listen for status changes; returns a function that removes the listener. */
  onStatus(listener: (s: BusStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private updateStatus(): void {
    const now = this.status;
    if (now === this.lastStatus) return;
    this.lastStatus = now;
    for (const l of [...this.statusListeners]) {
      try {
        l(now);
      } catch (err) {
        this.log.warn({ err }, 'history status listener threw');
      }
    }
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopPings();
      await quitConnection(this.conn, this.s.commandTimeoutMs);
    })();
    this.updateStatus();
    return this.closed;
  }
}

/** 'keep' only when the server says nothing acknowledged can be lost on a restart (AOF, fsync always). */
async function autoPolicy(conn: Redis): Promise<'keep' | 'restart'> {
  try {
    const [, aof] = (await conn.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await conn.config('GET', 'appendfsync')) as string[];
    return aof === 'yes' && fsync === 'always' ? 'keep' : 'restart';
  } catch {
    return 'restart'; // CONFIG disabled (managed Redis): assume a restart may lose data
  }
}

/** allkeys-* eviction can drop a room's stream or counter without any restart: say so loudly. */
async function warnOnEviction(conn: Redis, log: pino.Logger): Promise<void> {
  try {
    const [, policy] = (await conn.config('GET', 'maxmemory-policy')) as string[];
    if (policy?.startsWith('allkeys-')) log.warn({ maxmemoryPolicy: policy }, 'Redis may evict history keys under memory pressure; use maxmemory-policy noeviction (docs/redis.md)');
  } catch {
    // CONFIG disabled: nothing to check
  }
}
