/**
 * Disk under sustained abuse stays within the documented bound (docs/retention.md), on LMDB and on
 * PostgreSQL: an attacker writes 50 messages of 200 characters into each of 60 fresh rooms, again and
 * again (new room names each round), under retention limit 40, 8 KiB per room, max age 1 s, dedupe
 * window 1 s. After each round has aged out and retention ran, nothing of it is left (messages, ids,
 * the rooms themselves), and the store's size on disk stays under the budget
 *   2 × (rooms × CONFAB_HISTORY_MAX_BYTES + appends in the window × id record) + fixed overhead
 * round after round: freed space is reused (LMDB's free pages; PostgreSQL's after VACUUM, which
 * autovacuum runs in production), so after the first rounds it does not grow with their number.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { LmdbHistory } from '../../src/history/lmdb.js';
import type { History, Retention } from '../../src/history/types.js';
import { PostgresHistory } from '../../src/postgres/history.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { waitFor } from '../../src/procs/wait.js';

const R: Retention = { limit: 40, maxBytes: 8 * 1024, maxAgeMs: 1000, dedupeWindowMs: 1000 };
const ROOMS = 60;
const PER_ROOM = 50;
const ROUNDS = 3;
/** An id record is well under 200 bytes on either store (key + offset, prev, time, hash, expiry). */
const ID_BYTES = 200;
const BUDGET = 2 * (ROOMS * R.maxBytes + ROOMS * PER_ROOM * ID_BYTES) + 2 * 1024 * 1024;

type Sweeping = History & { sweep(now?: number): Promise<{ messages: number; ids: number; rooms: number }>; rooms(): Promise<string[]> };

async function abuse(h: Sweeping, round: number): Promise<number> {
  const from = { user: 'attacker', handle: 'attacker', node: 'n1', region: 'local' };
  await Promise.all(
    Array.from({ length: ROOMS }, async (_, r) => {
      for (let i = 0; i < PER_ROOM; i++) await h.append({ room: `abuse-${round}-${r}`, id: `m${i}`, kind: 'msg', text: 'x'.repeat(200), from, ts: Date.now() });
    }),
  );
  return ROOMS * PER_ROOM;
}

/** Rounds of abuse; after each, wait for it to age out and retention to forget it; returns the size after each round. */
async function rounds(h: Sweeping, size: () => Promise<number>): Promise<number[]> {
  const sizes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await abuse(h, round);
    const rooms = await h.rooms();
    assert.ok(rooms.length >= ROOMS, 'the round is stored');
    for (const room of rooms.slice(0, 3)) assert.ok((await h.read(room, 0, 1000)).messages.length <= R.limit, 'count limit per room');
    await waitFor(async () => {
      await h.sweep();
      return (await h.rooms()).length === 0;
    }, { what: `round ${round} aged out and forgotten (messages, ids, rooms)`, timeoutMs: 20_000, intervalMs: 250 });
    sizes.push(await size());
  }
  return sizes;
}

describe('history disk bound under sustained abuse', () => {
  let pgs: PostgresServer;
  before(async () => {
    pgs = await startPostgres();
  });
  after(async () => {
    await pgs?.close();
  });

  it('LMDB: the file stays under the budget and does not grow round after round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'confab-budget-'));
    const h = new LmdbHistory({ dataDir: dir, limit: R.limit, retention: R, durability: 'commit' });
    try {
      const sizes = await rounds(h, async () => statSync(join(dir, 'history', 'data.mdb')).size);
      for (const s of sizes) assert.ok(s <= BUDGET, `data.mdb ${s} bytes within the budget ${BUDGET}`);
      assert.ok(sizes[2]! <= sizes[1]! * 1.1 + 128 * 1024, `free pages reused, no growth per round: ${sizes.join(', ')}`);
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: the tables stay under the budget and do not grow round after round (with VACUUM)', async () => {
    const h = await PostgresHistory.open(
      { url: pgs.url, schema: 'budget', poolMax: 10, connectTimeoutMs: 2000, queryTimeoutMs: 5000, migrate: 'auto', sweepMs: 3_600_000, retention: R },
      pino({ level: 'silent' }),
    );
    try {
      const size = async () => {
        await pgs.query('VACUUM budget.messages, budget.dedupe, budget.rooms');
        const [row] = await pgs.query<{ n: string }>(
          "SELECT pg_total_relation_size('budget.messages') + pg_total_relation_size('budget.dedupe') + pg_total_relation_size('budget.rooms') AS n",
        );
        return Number(row!.n);
      };
      const sizes = await rounds(h, size);
      for (const s of sizes) assert.ok(s <= BUDGET, `tables ${s} bytes within the budget ${BUDGET}`);
      assert.ok(sizes[2]! <= sizes[1]! * 1.1 + 128 * 1024, `space reused, no growth per round: ${sizes.join(', ')}`);
      const [floor] = await pgs.query<{ value: string }>("SELECT value FROM budget.meta WHERE key = 'floor'");
      assert.ok(Number(floor!.value) >= PER_ROOM, 'forgotten rooms raised the offset floor');
    } finally {
      await h.close();
    }
  });
});
