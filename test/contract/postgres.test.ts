/**
 * The History contract suite, unchanged, against a real PostgreSQL 15 (src/testkit/postgres.ts):
 * each fixture in its own schema of one server; reopen = a new adapter (pool) on the same schema,
 * and in the second suite reopen also kills the server with SIGKILL (postmaster and backends)
 * and starts it again (crash recovery): acknowledged messages, ids and the epoch must survive.
 * Also `confab migrate` and concurrent migrations at start.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import type { Retention } from '../../src/history/types.js';
import { createPostgresHistory, SCHEMA_VERSION } from '../../src/postgres/index.js';
import { ConfabError } from '../../src/protocol/codes.js';
import { runMigrateCli } from '../../src/cli/migrate.js';
import { REPO_ROOT } from '../../src/testkit/gateway.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { historyContract, retentionEnv } from './history.contract.js';

const log = pino({ level: 'silent' });
const run = promisify(execFile);
let seq = 0;

async function open(url: string, schema: string, r: Retention) {
  const env = { CONFAB_HISTORY: 'postgres', DATABASE_URL: url, CONFAB_PG_SCHEMA: schema, CONFAB_PG_CONNECT_TIMEOUT_MS: '2000', ...retentionEnv(r) };
  return createPostgresHistory(loadConfig(env), log, { env });
}

for (const crash of [false, true]) {
  describe(`PostgreSQL history${crash ? ', reopen after kill -9 of the server' : ''}`, () => {
    let server: PostgresServer;
    before(async () => {
      server = await startPostgres();
    });
    after(async () => {
      await server?.close();
    });

    historyContract(crash ? 'postgres (crash)' : 'postgres', async (r) => {
      const schema = `ct${seq++}`;
      let cur = await open(server.url, schema, r);
      return {
        history: cur,
        reopen: async () => {
          await cur.close();
          if (crash) {
            await server.kill();
            await server.start();
          }
          cur = await open(server.url, schema, r);
          return cur;
        },
        sweep: () => cur.sweep(),
        close: () => cur.close(),
      };
    });

    if (!crash) {
      it('confab migrate: --status, migrate once, up to date after; CONFAB_PG_MIGRATE=off refuses an old schema naming the command', async () => {
        // in this process (the command's code), and once through the real `confab` entry point below
        const cli = async (...args: string[]) => {
          let out = '';
          await runMigrateCli(args, { DATABASE_URL: server.url }, (t) => (out += t));
          return out;
        };
        const env = { CONFAB_HISTORY: 'postgres', DATABASE_URL: server.url, CONFAB_PG_SCHEMA: 'mig', CONFAB_PG_MIGRATE: 'off' };
        await assert.rejects(createPostgresHistory(loadConfig(env), log, { env }), (e: unknown) => e instanceof ConfabError && /version 0, this confab needs \d+: run confab migrate/.test(e.message));
        assert.match(await cli('--schema', 'mig', '--status', '--help'), /^usage: confab migrate/, '--help wins and does nothing else');
        assert.match(await cli('--schema', 'mig', '--status'), /^schema mig: version 0, this confab needs \d+\n$/);
        assert.match(await cli('--schema', 'mig'), /^schema mig: migrated from version 0 to \d+ \(epoch \S+\)\n$/);
        const spawned = await run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'migrate', '--schema', 'mig', '--status', '--json'], { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: server.url }, timeout: 30_000 });
        const again = JSON.parse(spawned.stdout) as { version: number; needed: number; upToDate: boolean };
        assert.deepEqual(again, { schema: 'mig', version: SCHEMA_VERSION, needed: SCHEMA_VERSION, upToDate: true });
        const h = await createPostgresHistory(loadConfig(env), log, { env });
        try {
          const [row] = await server.query<{ value: string }>("SELECT value FROM mig.meta WHERE key = 'epoch'");
          assert.equal(h.epoch, row!.value, 'the gateway reads the epoch the migration made');
        } finally {
          await h.close();
        }
        // gateways starting at once: each migration applied once (advisory lock), one epoch
        const envs = [0, 1, 2].map(() => ({ ...env, CONFAB_PG_SCHEMA: 'race', CONFAB_PG_MIGRATE: 'auto' }));
        const hs = await Promise.all(envs.map((e) => createPostgresHistory(loadConfig(e), log, { env: e })));
        try {
          assert.equal(new Set(hs.map((x) => x.epoch)).size, 1);
          const rows = await server.query<{ n: string }>('SELECT count(*) AS n FROM race.schema_version');
          assert.equal(Number(rows[0]!.n), SCHEMA_VERSION);
        } finally {
          await Promise.all(hs.map((x) => x.close()));
        }
      });
    }
  });
}
