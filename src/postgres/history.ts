/**
 * History on PostgreSQL (node-postgres, one pool per gateway). Schema and functions: schema.ts.
 *
 * - Offsets are contiguous per room from 1: each room has one row holding its last offset; an
 *   append locks that row (SELECT … FOR UPDATE inside the `append` function) and inserts the
 *   message in the same transaction, so concurrent appends from any number of gateways to one
 *   room queue on the row lock and take consecutive offsets, while other rooms go on in parallel.
 *   (A per-room advisory lock would serialise the same way but keep the counter elsewhere; the
 *   row is needed anyway for first/last/bytes, and its lock dies with its transaction.)
 * - One round trip per append: the plpgsql function dedupes, numbers, inserts and trims.
 * - Idempotency: (room, user, id) in `dedupe`, kept for the dedupe window whatever happens to
 *   the message; a resend answers the original offset; other content answers duplicate_id_conflict.
 * - Durability (G8): append resolves after COMMIT returned, i.e. as durable as the server's
 *   `synchronous_commit` says (docs/postgres.md); CONFAB_PG_SYNCHRONOUS_COMMIT sets it per session.
 * - Epoch: made by the first migration, kept in `meta`; changes only when the schema is dropped.
 * - Outage: a connection-level failure marks the store down (`status`, followed by readiness via
 *   StoreGatedBus) and answers bus_unavailable; a probe every 250 ms brings it back up by itself.
 *   A commit whose answer was lost is reported as failed: the resend with the same id is deduped.
 */
import pg from 'pg';
import type pino from 'pino';
import type { BusStatus } from '../bus/types.js';
import { conflictError, contentHash, fromRecord, newEpoch, readResult, serial, storedBytes } from '../history/common.js';
import { roomKeepMs } from '../history/retention.js';
import type { AppendInput, AppendResult, History, ReadResult, RoomInfo } from '../history/types.js';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage } from '../protocol/frames.js';
import { Backoff } from '../shared/backoff.js';
import { Throttle } from '../shared/throttle.js';
import type { PostgresSettings } from './options.js';
import { ident, migrate, schemaVersion, SCHEMA_VERSION } from './schema.js';

type Body = Pick<ChatMessage, 'id' | 'kind' | 'text' | 'from'>;
/** An idle client's connection errors (every one while the server is gone) reach warn at most this often. */
const IDLE_ERROR_WARN_EVERY_MS = 30_000;

interface AppendRow {
  dup: boolean;
  conflict: boolean;
  o_off: string;
  o_prev: string;
  o_ts: string;
  o_body: string | null;
}

interface MsgRow {
  last: string | null;
  first: string | null;
  off: string | null;
  prev: string | null;
  ts: string | null;
  body: string | null;
}

/** SQLSTATE classes that mean the server or the connection is gone (not this statement's fault). */
function connectionLevel(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) {
    const c = e.code ?? '';
    return c.startsWith('08') || c.startsWith('57P') || c === '53300' || c === '57014'; // 57014: statement_timeout / cancel
  }
  return true; // a socket error, a timeout of the client, "Connection terminated", no free client in time
}

export class PostgresHistory implements History {
  readonly kind = 'postgres';
  private _epoch = '';
  private readonly s: string;
  private readonly tails = new Map<string, Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private _status: BusStatus = 'down';
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private probeTimer: NodeJS.Timeout | undefined;
  /** Probes while the server is down: jittered 100–500 ms apart, from the first step again once it answers. */
  private readonly probeBackoff = new Backoff({ minMs: 100, maxMs: 500 });
  private sweepTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Rows deleted by retention since start (metrics, tests). */
  swept = { messages: 0, ids: 0, rooms: 0 };

  private constructor(private readonly pool: pg.Pool, private readonly cfg: PostgresSettings, private readonly log: pino.Logger) {
    this.s = ident(cfg.schema);
    const throttle = new Throttle(IDLE_ERROR_WARN_EVERY_MS);
    pool.on('error', (err) => {
      // an idle client lost its connection (server gone): the pool drops it; find out whether the server is
      const pass = throttle.pass();
      if (pass) log.warn({ err: err.message, heldBack: pass.held }, 'postgres idle client error');
      else log.debug({ err: err.message }, 'postgres idle client error');
      this.suspect();
    });
  }

  /** Connect, migrate (or check the version), read the epoch, start retention and health checks. */
  static async open(cfg: PostgresSettings, log: pino.Logger): Promise<PostgresHistory> {
    const pool = new pg.Pool({
      connectionString: cfg.url,
      max: cfg.poolMax,
      connectionTimeoutMillis: cfg.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      query_timeout: cfg.queryTimeoutMs,
      statement_timeout: cfg.queryTimeoutMs,
      application_name: 'confab',
      ...(cfg.synchronousCommit ? { options: `-c synchronous_commit=${cfg.synchronousCommit}` } : {}),
    });
    const h = new PostgresHistory(pool, cfg, log);
    try {
      const client = await pool.connect();
      try {
        if (cfg.migrate === 'auto') {
          const m = await migrate(client, cfg.schema, newEpoch);
          if (m.from !== m.to) log.info({ schema: cfg.schema, from: m.from, to: m.to }, 'postgres schema migrated');
          h._epoch = m.epoch;
        } else {
          const v = await schemaVersion(client, cfg.schema);
          if (v !== SCHEMA_VERSION) throw new ConfabError('store_failed', `schema ${cfg.schema} is at version ${v}, this confab needs ${SCHEMA_VERSION}: run confab migrate (CONFAB_PG_MIGRATE=off)`);
          h._epoch = (await client.query<{ value: string }>(`SELECT value FROM ${h.s}.meta WHERE key = 'epoch'`)).rows[0]!.value;
        }
      } finally {
        client.release();
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      if (e instanceof ConfabError) throw e;
      if (connectionLevel(e)) throw new ConfabError('bus_unavailable', `postgres: cannot connect to DATABASE_URL (${(e as Error).message})`, { cause: e });
      throw new ConfabError('store_failed', `postgres: ${(e as Error).message}`, { cause: e });
    }
    h.setStatus('up');
    h.sweepTimer = setInterval(() => void h.sweep().catch((err: unknown) => log.warn({ err }, 'postgres retention sweep failed')), cfg.sweepMs);
    h.sweepTimer.unref();
    h.healthTimer = setInterval(() => h.suspect(), 2_000);
    h.healthTimer.unref();
    log.info({ schema: cfg.schema, epoch: h._epoch, poolMax: cfg.poolMax, synchronousCommit: cfg.synchronousCommit ?? 'server default' }, 'postgres history ready');
    return h;
  }

  get epoch(): string {
    return this._epoch;
  }

  /** 'up' while the server answers; a gateway whose bus is elsewhere follows it (src/adapters.ts). */
  get status(): BusStatus {
    return this.closing ? 'down' : this._status;
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setStatus(s: BusStatus): void {
    if (s === this._status) return;
    this._status = s;
    this.log.info({ status: s }, s === 'up' ? 'postgres reachable again' : 'postgres unreachable');
    for (const l of [...this.listeners]) {
      try {
        l(this.status);
      } catch (err) {
        this.log.warn({ err }, 'history status listener threw');
      }
    }
  }

  /** Check the server now (a cheap query); while it fails, keep checking (probeBackoff). */
  private suspect(): void {
    if (this.probing || this.closing) return;
    this.probing = true;
    void this.pool
      .query('SELECT 1')
      .then(
        () => {
          this.probing = false;
          clearTimeout(this.probeTimer);
          this.probeBackoff.reset();
          this.setStatus('up');
        },
        (err: unknown) => {
          this.probing = false;
          if (!connectionLevel(err)) return;
          this.setStatus('down');
          clearTimeout(this.probeTimer);
          this.probeTimer = setTimeout(() => this.suspect(), this.probeBackoff.next());
          this.probeTimer.unref();
        },
      );
  }

  private fail(e: unknown, what: string): never {
    if (e instanceof ConfabError) throw e;
    if (connectionLevel(e)) {
      this.setStatus('down');
      this.suspect();
      throw new ConfabError('bus_unavailable', `postgres ${what}: ${(e as Error).message}`, { cause: e });
    }
    throw new ConfabError('store_failed', `postgres ${what}: ${(e as Error).message}`, { cause: e });
  }

  private assertOpen(): void {
    if (this.closing) throw new ConfabError('bus_unavailable', 'history is closed');
  }

  append(input: AppendInput): Promise<AppendResult> {
    this.assertOpen();
    return serial(this.tails, input.room, () => this.appendNow(input));
  }

  private async appendNow(input: AppendInput): Promise<AppendResult> {
    this.assertOpen();
    const body: Body = { id: input.id, kind: input.kind, text: input.text, from: input.from };
    const json = JSON.stringify(body);
    const hash = contentHash(input);
    const r = this.cfg.retention;
    let row: AppendRow | undefined;
    try {
      const res = await this.pool.query<AppendRow>(`SELECT * FROM ${this.s}.append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [
        input.room, input.from.user, input.id, json, input.ts, hash, storedBytes(input), Date.now(), r.dedupeWindowMs, r.limit, r.maxBytes,
      ]);
      row = res.rows[0];
    } catch (e) {
      this.fail(e, 'append');
    }
    if (!row) throw new ConfabError('store_failed', 'postgres append returned nothing');
    const offset = Number(row.o_off);
    const prev = Number(row.o_prev);
    if (!row.dup) return { message: { ...input, offset, prev, epoch: this._epoch }, duplicate: false };
    if (row.conflict) throw conflictError(input);
    const stored = row.o_body ? this.decode(input.room, offset, prev, Number(row.o_ts), row.o_body) : undefined;
    return { message: stored ?? fromRecord(input, { offset, prev, ts: Number(row.o_ts), hash }, this._epoch), duplicate: true };
  }

  private decode(room: string, offset: number, prev: number, ts: number, body: string): ChatMessage {
    let b: Body;
    try {
      b = JSON.parse(body) as Body;
    } catch (err) {
      throw new ConfabError('store_failed', `corrupt history row ${room}/${offset}`, { cause: err });
    }
    return { room, id: b.id, kind: b.kind === 'alert' ? 'alert' : 'msg', text: b.text, from: b.from, ts, offset, prev, epoch: this._epoch };
  }

  /** The room row and up to `limit` messages in one statement (one snapshot). */
  private async rows(room: string, where: string, order: 'ASC' | 'DESC', a: number, limit: number): Promise<{ first: number; last: number; msgs: ChatMessage[] }> {
    this.assertOpen();
    let rows: MsgRow[];
    try {
      rows = (
        await this.pool.query<MsgRow>(
          `SELECT r.first_off AS first, r.last_off AS last, m.off, m.prev, m.ts, m.body
             FROM (SELECT 1) one
             LEFT JOIN ${this.s}.rooms r ON r.room = $1
             LEFT JOIN LATERAL (SELECT off, prev, ts, body FROM ${this.s}.messages WHERE room = $1 ${where} ORDER BY off ${order} LIMIT $3) m ON true`,
          [room, a, limit],
        )
      ).rows;
    } catch (e) {
      this.fail(e, 'read');
    }
    const head = rows[0];
    const last = Number(head?.last ?? 0);
    const firstRaw = Number(head?.first ?? 0);
    const first = firstRaw === 0 || firstRaw > last ? 0 : firstRaw;
    const msgs: ChatMessage[] = [];
    for (const x of rows) if (x.off !== null) msgs.push(this.decode(room, Number(x.off), Number(x.prev), Number(x.ts), x.body ?? ''));
    return { first, last, msgs };
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    const from = Math.max(0, Math.floor(Number.isFinite(after) ? after : 0));
    const n = Math.max(0, Math.floor(limit));
    const { last, msgs } = await this.rows(room, 'AND off > $2', 'ASC', from, n);
    return readResult(this._epoch, from, msgs, last, n);
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    const n = Math.max(0, Math.floor(limit));
    const { last, msgs } = await this.rows(room, 'AND $2::bigint >= 0', 'DESC', 0, n);
    return { epoch: this._epoch, messages: msgs.reverse(), last, more: false };
  }

  async info(room: string): Promise<RoomInfo> {
    const { first, last } = await this.rows(room, 'AND $2::bigint < 0', 'ASC', 0, 0);
    return { epoch: this._epoch, first, last };
  }

  async rooms(): Promise<string[]> {
    this.assertOpen();
    try {
      return (await this.pool.query<{ room: string }>(`SELECT room FROM ${this.s}.rooms ORDER BY room LIMIT 1000`)).rows.map((r) => r.room);
    } catch (e) {
      this.fail(e, 'rooms');
    }
  }

  /**
   * Retention: messages past the max age, expired idempotency keys, rooms with nothing left. Runs every
   * CONFAB_HISTORY_SWEEP_MS on every gateway (one at a time: an advisory lock), in batches until done.
   */
  async sweep(now = Date.now()): Promise<{ messages: number; ids: number; rooms: number }> {
    this.assertOpen();
    const total = { messages: 0, ids: 0, rooms: 0 };
    const r = this.cfg.retention;
    for (let i = 0; i < 100; i++) {
      const res = await this.pool.query<{ messages: string; ids: string; rooms: string }>(`SELECT * FROM ${this.s}.sweep($1, $2, $3, $4)`, [now, r.maxAgeMs, roomKeepMs(r), 500]);
      const row = res.rows[0]!;
      const got = { messages: Number(row.messages), ids: Number(row.ids), rooms: Number(row.rooms) };
      total.messages += got.messages;
      total.ids += got.ids;
      total.rooms += got.rooms;
      if (got.messages === 0 && got.ids === 0 && got.rooms === 0) break;
    }
    this.swept.messages += total.messages;
    this.swept.ids += total.ids;
    this.swept.rooms += total.rooms;
    return total;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweepTimer);
      clearInterval(this.healthTimer);
      clearTimeout(this.probeTimer);
      await Promise.allSettled([...this.tails.values()]);
      await this.pool.end().catch(() => undefined);
    })();
    for (const l of [...this.listeners]) l('down');
    return this.closing;
  }
}
