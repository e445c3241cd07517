/**
 * Bus and history on different brokers (CONFAB_BUS / CONFAB_HISTORY), opened
 * the way `confab start` opens them (createAdapters): the Bus and History
 * contract suites, unchanged, run against what it returns for NATS bus + Redis
 * Streams history and for Redis bus + JetStream history. The bus suite runs
 * twice per pair: with the bus's broker taken down, and with the history's
 * store taken down (the gateway must see "down" then too). Also: which
 * connections each pair opens (one shared NATS connection when bus and history
 * are both on NATS; each broker only for its part otherwise), and an in-process
 * bus beside a remote history.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createAdapters, StoreGatedBus, type Adapters } from '../../src/adapters.js';
import { loadConfig } from '../../src/config/config.js';
import { ConfabError } from '../../src/protocol/codes.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';
import { busContract } from './bus.contract.js';
import type { Retention } from '../../src/history/types.js';
import { historyContract, retentionEnv, type InspectableHistory } from './history.contract.js';

const log = pino({ level: 'silent' });
let seq = 0;

let nats: NatsServer & { close(): Promise<void> };
let redis: RedisServer;
before(async () => {
  [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
});
after(async () => {
  await Promise.all([nats?.close(), redis?.close()]);
});

type Pair = { bus: 'nats' | 'redis' | 'memory'; history: 'redis' | 'jetstream' };

/** createAdapters for a pair, both brokers' URLs set; `space` keeps fixtures apart (stream, prefixes). */
async function open(pair: Pair, space: string, retention?: Retention): Promise<Adapters> {
  const env = {
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    CONFAB_BUS: pair.bus,
    CONFAB_HISTORY: pair.history,
    CONFAB_SECRET: 'contract-secret-0123456789',
    CONFAB_NODE_ID: `mx${seq++}`,
    ...(retention ? retentionEnv(retention) : {}),
    CONFAB_STREAM_NAME: space.toUpperCase(),
    CONFAB_NATS_PREFIX: space,
    CONFAB_REDIS_PREFIX: `${space}p${process.pid}`,
    CONFAB_REDIS_RECONNECT_MAX_MS: '200',
  };
  return createAdapters(loadConfig(env), log, { env });
}

const outages = {
  nats: { down: () => nats.stop('SIGKILL'), up: () => nats.start() },
  redis: { down: () => redis.kill(), up: () => redis.start() },
};

/** The bus contract on two "nodes" of a pair, with one broker's outage; their histories stay open (the bus's status depends on them). */
function pairBusContract(pair: Pair, down: 'nats' | 'redis'): void {
  busContract(`${pair.bus} bus beside ${pair.history} history, ${down} down`, async () => {
    const space = `mb${seq++}`;
    const a = await open(pair, space);
    const b = await open(pair, space);
    return {
      buses: [a.bus, b.bus],
      outage: outages[down],
      close: async () => {
        for (const x of [a, b]) {
          await x.bus.close();
          await x.history.close();
        }
      },
    };
  });
}

/** The history contract on the history a pair opens (its bus closed at once), reopen = open the pair again. */
function pairHistoryContract(pair: Pair): void {
  historyContract(`${pair.history} history opened beside a ${pair.bus} bus`, async (retention) => {
    const space = `mh${seq++}`;
    const openHistory = async () => {
      const x = await open(pair, space, retention);
      await x.bus.close();
      return x.history as InspectableHistory;
    };
    let history = await openHistory();
    return {
      history,
      reopen: async () => {
        await history.close();
        history = await openHistory();
        return history;
      },
      sweep: () => (history as unknown as { sweep?: () => Promise<unknown> }).sweep?.() ?? Promise.resolve(),
      close: () => history.close(),
    };
  });
}

describe('NATS bus + Redis Streams history', () => {
  pairBusContract({ bus: 'nats', history: 'redis' }, 'nats');
  pairBusContract({ bus: 'nats', history: 'redis' }, 'redis');
  pairHistoryContract({ bus: 'nats', history: 'redis' });
});

describe('Redis bus + JetStream history', () => {
  pairBusContract({ bus: 'redis', history: 'jetstream' }, 'redis');
  pairBusContract({ bus: 'redis', history: 'jetstream' }, 'nats');
  pairHistoryContract({ bus: 'redis', history: 'jetstream' });
});

/** Names of the clients connected to nats-server, and to redis-server (CLIENT LIST), for one node id. */
async function connectionsOf(node: string): Promise<{ nats: string[]; redis: string[] }> {
  const connz = (await nats.monitor('/connz')).body as { connections?: { name?: string }[] };
  const natsNames = (connz.connections ?? []).map((c) => c.name ?? '').filter((n) => n.includes(node));
  const list = await redis.command('CLIENT LIST');
  const redisNames = [...list.matchAll(/name=(\S+)/g)].map((m) => m[1]!).filter((n) => n.includes(node));
  return { nats: natsNames.sort(), redis: redisNames.sort() };
}

describe('connections per pair', () => {
  const cases: { pair: { bus: 'nats' | 'redis'; history: 'redis' | 'jetstream' }; nats: string[]; redis: string[] }[] = [
    { pair: { bus: 'nats', history: 'jetstream' }, nats: ['confab-N'], redis: [] },
    { pair: { bus: 'nats', history: 'redis' }, nats: ['confab-N'], redis: ['confab-N-hist'] },
    { pair: { bus: 'redis', history: 'jetstream' }, nats: ['confab-N'], redis: ['confab-N-pub', 'confab-N-sub'] },
    { pair: { bus: 'redis', history: 'redis' }, nats: [], redis: ['confab-N-hist', 'confab-N-pub', 'confab-N-sub'] },
  ];
  for (const c of cases) {
    it(`${c.pair.bus} bus + ${c.pair.history} history: NATS ${JSON.stringify(c.nats)}, Redis ${JSON.stringify(c.redis)}; closing both closes every one`, async () => {
      const node = `cx${process.pid}n${seq}`;
      const env = {
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        CONFAB_BUS: c.pair.bus,
        CONFAB_HISTORY: c.pair.history,
        CONFAB_SECRET: 'contract-secret-0123456789',
        CONFAB_NODE_ID: node,
        CONFAB_STREAM_NAME: `CX${seq}`,
        CONFAB_NATS_PREFIX: `cx${seq}`,
        CONFAB_REDIS_PREFIX: `cx${seq++}p${process.pid}`,
      };
      const a = await createAdapters(loadConfig(env), log, { env });
      const want = (names: string[]) => names.map((n) => n.replace('N', node)).sort();
      try {
        const same = (c.pair.bus === 'nats') === (c.pair.history === 'jetstream');
        assert.equal(a.bus instanceof StoreGatedBus, !same, 'the bus follows the history only when they are on different brokers');
        await waitFor(async () => JSON.stringify(await connectionsOf(node)) === JSON.stringify({ nats: want(c.nats), redis: want(c.redis) }), { what: `connections of ${node}` });
      } finally {
        await a.bus.close();
        await a.history.close();
      }
      await waitFor(async () => JSON.stringify(await connectionsOf(node)) === JSON.stringify({ nats: [], redis: [] }), { what: `${node} disconnected everywhere` });
    });
  }
});

describe('in-process bus + remote history (one gateway)', () => {
  for (const history of ['redis', 'jetstream'] as const) {
    it(`memory bus + ${history} history: the bus reports down while ${history} is down, refuses publishes, and comes back`, async () => {
      const a = await open({ bus: 'memory', history }, `mm${seq++}`);
      try {
        assert.equal(a.bus.kind, 'memory');
        assert.equal(a.bus.status, 'up');
        const got: string[] = [];
        a.bus.subscribe('room.x', (d) => got.push(new TextDecoder().decode(d)));
        const statuses: string[] = [];
        a.bus.onStatus((s) => statuses.push(s));
        const broker = history === 'redis' ? outages.redis : outages.nats;
        await broker.down();
        await waitFor(() => a.bus.status === 'down', { what: 'status down', timeoutMs: 15_000 });
        assert.throws(() => a.bus.publish('room.x', new TextEncoder().encode('no')), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
        await assert.rejects(a.history.info('x'), (e: unknown) => e instanceof ConfabError);
        await broker.up();
        await waitFor(() => a.bus.status === 'up', { what: 'status up again', timeoutMs: 20_000 });
        assert.equal(statuses[0], 'down');
        assert.equal(statuses.at(-1), 'up');
        a.bus.publish('room.x', new TextEncoder().encode('yes'));
        await waitFor(() => got.length > 0, { what: 'delivery after recovery' });
        assert.deepEqual(got, ['yes']);
        await waitFor(async () => (await a.history.info('x').then(() => true, () => false)), { what: 'history answers again', timeoutMs: 20_000 });
      } finally {
        await a.bus.close();
        await a.history.close();
      }
    });
  }
});
