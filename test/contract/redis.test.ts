/**
 * The Bus and History contract suites, unchanged, against real redis-server
 * processes: the bus with an outage (redis-server killed, started again on the
 * same port); the history on a server without persistence (reopen = a new
 * adapter instance on the same Redis), and on a server with appendonly +
 * appendfsync always where reopen also kills redis-server with SIGKILL and
 * starts it again (acknowledged messages and the epoch must survive).
 */
import { after, before, describe } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createRedisAdapters } from '../../src/redis/index.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { busContract } from './bus.contract.js';
import type { Retention } from '../../src/history/types.js';
import { historyContract, retentionEnv } from './history.contract.js';

const log = pino({ level: 'silent' });
let seq = 0;

async function adapters(url: string, opts: { retention?: Retention; prefix?: string } = {}) {
  const n = seq++;
  const env = {
    REDIS_URL: url,
    CONFAB_SECRET: 'contract-secret-0123456789',
    CONFAB_NODE_ID: `node${n}`,
    ...(opts.retention ? retentionEnv(opts.retention) : {}),
    CONFAB_REDIS_PREFIX: opts.prefix ?? `ct${process.pid}x${n}`,
    CONFAB_REDIS_RECONNECT_MAX_MS: '200',
  };
  return createRedisAdapters(loadConfig(env), log, { env });
}

describe('Redis bus', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.close();
  });

  busContract('redis pub/sub', async () => {
    const prefix = `bus${process.pid}x${seq++}`;
    const a = await adapters(server.url, { prefix });
    const b = await adapters(server.url, { prefix });
    await a.history.close();
    await b.history.close();
    return {
      buses: [a.bus, b.bus],
      outage: { down: () => server.kill(), up: () => server.start() },
      close: async () => {
        await a.bus.close();
        await b.bus.close();
      },
    };
  });
});

describe('Redis Streams history, no persistence', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.close();
  });

  historyContract('redis streams', async (retention) => {
    const prefix = `hs${process.pid}x${seq++}`;
    let cur = await adapters(server.url, { retention, prefix });
    await cur.bus.close();
    return {
      history: cur.history,
      reopen: async () => {
        await cur.history.close();
        cur = await adapters(server.url, { retention, prefix });
        await cur.bus.close();
        return cur.history;
      },
      sweep: () => cur.history.sweep(),
      close: () => cur.history.close(),
    };
  });
});

describe('Redis Streams history, appendonly + appendfsync always, reopen after kill -9 of redis-server', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ appendonly: 'always' });
  });
  after(async () => {
    await server?.close();
  });

  historyContract('redis streams (aof always, crash)', async (retention) => {
    const prefix = `ha${process.pid}x${seq++}`;
    let cur = await adapters(server.url, { retention, prefix });
    await cur.bus.close();
    return {
      history: cur.history,
      reopen: async () => {
        await cur.history.close();
        await server.kill();
        await server.start();
        cur = await adapters(server.url, { retention, prefix });
        await cur.bus.close();
        return cur.history;
      },
      sweep: () => cur.history.sweep(),
      close: () => cur.history.close(),
    };
  });
});
