/**
 * The PostgreSQL schema of the history and its migrations. Every object lives in one schema
 * (CONFAB_PG_SCHEMA, default `confab`); `<schema>.schema_version` records which migrations ran.
 * `migrate()` runs the missing ones in one transaction under a transaction-level advisory lock,
 * so gateways starting at once (or `confab migrate` beside them) apply each migration exactly once.
 *
 * Tables (docs/postgres.md has the sizing):
 *   meta(key, value)        'epoch' (made once, at the first migration) and 'floor' (see rooms)
 *   rooms(room PK, first_off, last_off, bytes, last_ts)
 *                           one row per room: the offset counter, updated in the same transaction as
 *                           the insert (the row lock serialises a room's appends: offsets are
 *                           contiguous). A room whose messages all aged out and whose ids expired is
 *                           deleted; meta.floor is raised to its last offset in the same statement, and
 *                           a room created again starts above the floor (offsets never go back).
 *   messages(room, off) PK  prev, ts (the gateway's clock, ms), bytes (counted against the per-room
 *                           byte budget), body (JSON: id, kind, text, from). BRIN index on ts for the
 *                           age sweep (messages arrive in time order: a few pages of index per GB).
 *   dedupe(room, user_id, id) PK
 *                           off, prev, ts, hash (of kind + text), expires: the idempotency key, kept
 *                           for the dedupe window whatever happens to the message. Index on expires.
 * Functions: append(...) — one round trip per append (dedupe, offset, insert, trim by count and
 * bytes); sweep(...) — age retention, expired ids, forgotten rooms, in bounded batches.
 */
import type pg from 'pg';

/** A schema name as a quoted SQL identifier (validated by the caller: [a-z_][a-z0-9_]*). */
export function ident(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`bad schema name ${JSON.stringify(schema)}`);
  return `"${schema}"`;
}

/** Migrations in order; version = index + 1. Never edit a released one: add another. */
export function migrations(s: string): string[] {
  return [
    `
CREATE TABLE ${s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE ${s}.rooms (
  room text PRIMARY KEY,
  first_off bigint NOT NULL,
  last_off bigint NOT NULL,
  bytes bigint NOT NULL,
  last_ts bigint NOT NULL
) WITH (fillfactor = 80);
CREATE TABLE ${s}.messages (
  room text NOT NULL,
  off bigint NOT NULL,
  prev bigint NOT NULL,
  ts bigint NOT NULL,
  bytes integer NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (room, off)
);
CREATE INDEX messages_ts ON ${s}.messages USING brin (ts);
CREATE TABLE ${s}.dedupe (
  room text NOT NULL,
  user_id text NOT NULL,
  id text NOT NULL,
  off bigint NOT NULL,
  prev bigint NOT NULL,
  ts bigint NOT NULL,
  hash text NOT NULL,
  expires bigint NOT NULL,
  PRIMARY KEY (room, user_id, id)
);
CREATE INDEX dedupe_expires ON ${s}.dedupe (expires);
INSERT INTO ${s}.meta (key, value) VALUES ('floor', '0');

CREATE FUNCTION ${s}.append(p_room text, p_user text, p_id text, p_body text, p_ts bigint, p_hash text, p_bytes integer,
                            p_now bigint, p_window bigint, p_limit bigint, p_max_bytes bigint)
RETURNS TABLE (dup boolean, conflict boolean, o_off bigint, o_prev bigint, o_ts bigint, o_body text)
LANGUAGE plpgsql AS $fn$
DECLARE
  r ${s}.rooms%ROWTYPE;
  d ${s}.dedupe%ROWTYPE;
  n bigint; f bigint; b bigint; cut bigint; freed bigint;
BEGIN
  SELECT * INTO r FROM ${s}.rooms x WHERE x.room = p_room FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO ${s}.rooms (room, first_off, last_off, bytes, last_ts)
      SELECT p_room, 0, m.value::bigint, 0, p_ts FROM ${s}.meta m WHERE m.key = 'floor'
      ON CONFLICT (room) DO NOTHING;
    SELECT * INTO r FROM ${s}.rooms x WHERE x.room = p_room FOR UPDATE;
  END IF;
  SELECT * INTO d FROM ${s}.dedupe x WHERE x.room = p_room AND x.user_id = p_user AND x.id = p_id AND x.expires > p_now;
  IF FOUND THEN
    RETURN QUERY SELECT true, d.hash <> p_hash, d.off, d.prev, d.ts,
      (SELECT m.body FROM ${s}.messages m WHERE m.room = p_room AND m.off = d.off);
    RETURN;
  END IF;
  n := r.last_off + 1;
  IF r.first_off = 0 OR r.first_off > r.last_off THEN f := n; b := p_bytes; ELSE f := r.first_off; b := r.bytes + p_bytes; END IF;
  INSERT INTO ${s}.messages (room, off, prev, ts, bytes, body) VALUES (p_room, n, r.last_off, p_ts, p_bytes, p_body);
  INSERT INTO ${s}.dedupe (room, user_id, id, off, prev, ts, hash, expires)
    VALUES (p_room, p_user, p_id, n, r.last_off, p_ts, p_hash, p_now + p_window)
    ON CONFLICT (room, user_id, id) DO UPDATE
      SET off = excluded.off, prev = excluded.prev, ts = excluded.ts, hash = excluded.hash, expires = excluded.expires;
  cut := n - p_limit + 1;
  IF cut > f THEN
    WITH del AS (DELETE FROM ${s}.messages m WHERE m.room = p_room AND m.off >= f AND m.off < cut RETURNING m.bytes)
      SELECT coalesce(sum(del.bytes), 0) INTO freed FROM del;
    b := b - freed; f := cut;
  END IF;
  WHILE p_max_bytes > 0 AND b > p_max_bytes AND f < n LOOP
    DELETE FROM ${s}.messages m WHERE m.room = p_room AND m.off = f RETURNING m.bytes INTO freed;
    b := b - coalesce(freed, 0); f := f + 1;
  END LOOP;
  UPDATE ${s}.rooms x SET first_off = f, last_off = n, bytes = b, last_ts = greatest(x.last_ts, p_ts) WHERE x.room = p_room;
  RETURN QUERY SELECT false, false, n, r.last_off, p_ts, NULL::text;
END
$fn$;

CREATE FUNCTION ${s}.sweep(p_now bigint, p_max_age bigint, p_keep bigint, p_batch integer)
RETURNS TABLE (messages bigint, ids bigint, rooms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  rr record; c bigint; fb bigint; mx bigint;
  n_msgs bigint := 0; n_ids bigint := 0; n_rooms bigint := 0;
BEGIN
  -- one sweeper at a time (several gateways share the database)
  IF NOT pg_try_advisory_xact_lock(hashtext('${s}.sweep')) THEN
    RETURN QUERY SELECT 0::bigint, 0::bigint, 0::bigint;
    RETURN;
  END IF;
  IF p_max_age > 0 THEN
    -- per room, drop the prefix up to its newest message older than the cutoff (offsets stay contiguous)
    FOR rr IN SELECT m.room, max(m.off) AS mx FROM ${s}.messages m WHERE m.ts < p_now - p_max_age GROUP BY m.room LIMIT p_batch LOOP
      PERFORM 1 FROM ${s}.rooms x WHERE x.room = rr.room FOR UPDATE;
      WITH del AS (DELETE FROM ${s}.messages m WHERE m.room = rr.room AND m.off <= rr.mx RETURNING m.off, m.bytes)
        SELECT count(*), coalesce(sum(del.bytes), 0), max(del.off) INTO c, fb, mx FROM del;
      IF c > 0 THEN
        UPDATE ${s}.rooms x SET first_off = greatest(x.first_off, mx + 1), bytes = greatest(0, x.bytes - fb) WHERE x.room = rr.room;
        n_msgs := n_msgs + c;
      END IF;
    END LOOP;
  END IF;
  WITH del AS (DELETE FROM ${s}.dedupe x WHERE x.ctid = ANY (ARRAY(SELECT y.ctid FROM ${s}.dedupe y WHERE y.expires <= p_now LIMIT p_batch * 20)) RETURNING 1)
    SELECT count(*) INTO n_ids FROM del;
  -- rooms with nothing stored and no id remembered: forgotten; the floor keeps their offsets from coming back
  WITH gone AS (
    DELETE FROM ${s}.rooms x
     WHERE x.room = ANY (ARRAY(SELECT y.room FROM ${s}.rooms y WHERE y.last_ts < p_now - p_keep AND (y.first_off = 0 OR y.first_off > y.last_off) LIMIT p_batch))
       AND x.last_ts < p_now - p_keep AND (x.first_off = 0 OR x.first_off > x.last_off)
    RETURNING x.last_off)
  SELECT count(*), max(gone.last_off) INTO n_rooms, mx FROM gone;
  IF n_rooms > 0 THEN
    UPDATE ${s}.meta SET value = greatest(value::bigint, mx)::text WHERE key = 'floor';
  END IF;
  RETURN QUERY SELECT n_msgs, n_ids, n_rooms;
END
$fn$;
`,
  ];
}

export interface MigrateResult {
  /** Version before and after. */
  from: number;
  to: number;
  /** The history epoch (made by the first migration). */
  epoch: string;
}

/** The schema's version (0 when nothing was ever applied). */
export async function schemaVersion(client: pg.ClientBase, schema: string): Promise<number> {
  const s = ident(schema);
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.schema_version`]);
  if (exists.rows[0]?.t == null) return 0;
  const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_version`);
  return r.rows[0]?.v ?? 0;
}

/**
 * Apply every missing migration in one transaction (advisory lock per schema), make the epoch if
 * there is none yet, and return it. Refuses a database migrated by a newer confab (unknown version).
 */
export async function migrate(client: pg.ClientBase, schema: string, newEpoch: () => string): Promise<MigrateResult> {
  const s = ident(schema);
  const all = migrations(s);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`confab-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const from = await schemaVersion(client, schema);
    if (from > all.length) throw new Error(`schema ${schema} is at version ${from}, newer than this confab knows (${all.length}): upgrade confab`);
    for (let v = from + 1; v <= all.length; v++) {
      await client.query(all[v - 1]!);
      await client.query(`INSERT INTO ${s}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query(`INSERT INTO ${s}.meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING`, [newEpoch()]);
    const epoch = (await client.query<{ value: string }>(`SELECT value FROM ${s}.meta WHERE key = 'epoch'`)).rows[0]!.value;
    await client.query('COMMIT');
    return { from, to: all.length, epoch };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** The number of the newest migration this confab knows. */
export const SCHEMA_VERSION = migrations('"x"').length;
