/**
 * The History contract suite, unchanged, against a real PostgreSQL 15 (src/testkit/postgres.ts):
 * each fixture in its own schema of one server; reopen = a new adapter (pool) on the same schema,
 * and in the second suite reopen also kills the server with SIGKILL (postmaster and backends)
 * and starts it again (crash recovery): acknowledged messages, ids and the epoch must survive.
 */
import { after, before, describe } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import type { Retention } from '../../src/history/types.js';
import { createPostgresHistory } from '../../src/postgres/index.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { historyContract, retentionEnv } from './history.contract.js';

const log = pino({ level: 'silent' });
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
  });
}
