/**
 * History append rate per adapter (a measurement, not a test): appends/s one at a time (each awaited,
 * the latency-bound case of one sender) and with 64 in flight over 64 rooms (many senders), on
 * PostgreSQL (a throwaway local server from the test kit, fsync on: its default) with synchronous_commit
 * on and off, beside LMDB (flush, commit) and memory. Loopback, one machine; figures in docs/postgres.md.
 *   node --import tsx src/bench/measure-history-append.ts [--n 3000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { LmdbHistory } from '../history/lmdb.js';
import { MemoryHistory } from '../history/memory.js';
import { DEFAULT_RETENTION, type History } from '../history/types.js';
import { PostgresHistory } from '../postgres/history.js';
import { startPostgres } from '../testkit/postgres.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '3000' } } });
const N = Number(values.n);
const from = { user: 'bench', handle: 'bench', node: 'n1', region: 'local' };
const text = 'x'.repeat(100);

async function rate(h: History, inFlight: number): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      for (let i = next++; i < N; i = next++) await h.append({ room: `bench-${inFlight}-${w}`, id: `m${i}`, kind: 'msg', text, from, ts: Date.now() });
    }),
  );
  return Math.round(N / (Number(process.hrtime.bigint() - t0) / 1e9));
}

async function measure(name: string, h: History): Promise<void> {
  await rate(h, 8); // warm up
  const one = await rate(h, 1);
  const many = await rate(h, 64);
  console.log(`| ${name} | ${one.toLocaleString('en')} | ${many.toLocaleString('en')} |`);
  await h.close();
}

const pg = await startPostgres({ settings: { fsync: 'on', full_page_writes: 'on' } });
const dir = mkdtempSync(join(tmpdir(), 'confab-bench-'));
try {
  console.log(`${N} appends of ${text.length} characters; appends/s`);
  console.log('| history | 1 in flight | 64 in flight (64 rooms) |\n|---|---|---|');
  const log = pino({ level: 'silent' });
  for (const sc of ['on', 'off'] as const) {
    const h = await PostgresHistory.open({ url: pg.url, schema: `b_${sc}`, poolMax: 10, connectTimeoutMs: 5000, queryTimeoutMs: 10_000, synchronousCommit: sc, migrate: 'auto', sweepMs: 3_600_000, retention: DEFAULT_RETENTION }, log);
    await measure(`postgres, synchronous_commit=${sc} (pool 10)`, h);
  }
  await measure('lmdb, flush (fsync)', new LmdbHistory({ dataDir: join(dir, 'f'), limit: 10_000, durability: 'flush' }));
  await measure('lmdb, commit', new LmdbHistory({ dataDir: join(dir, 'c'), limit: 10_000, durability: 'commit' }));
  await measure('memory', new MemoryHistory());
} finally {
  await pg.close();
  rmSync(dir, { recursive: true, force: true });
}
