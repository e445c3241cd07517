/**
 * The Bus and History contract suites, unchanged, against NATS + JetStream:
 * on one nats-server, and on a three-node JetStream cluster with replicas 3
 * (the two buses of a fixture are connected to different nodes there).
 */
import { after, before, describe } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { startNats, startNatsCluster, waitHealthy, type NatsCluster, type NatsServer } from '../../src/procs/nats.js';
import { busContract } from './bus.contract.js';
import type { Retention } from '../../src/history/types.js';
import { historyContract, retentionEnv } from './history.contract.js';

const log = pino({ level: 'silent' });
let seq = 0;

async function adapters(url: string, opts: { retention?: Retention; replicas?: number; stream?: string } = {}) {
  const n = seq++;
  const env = {
    NATS_URL: url,
    CONFAB_SECRET: 'contract-secret-0123456789',
    CONFAB_NODE_ID: `node${n}`,
    ...(opts.retention ? retentionEnv(opts.retention) : {}),
    CONFAB_STREAM_NAME: opts.stream ?? `CT${n}`,
    CONFAB_NATS_PREFIX: opts.stream ? opts.stream.toLowerCase() : `ct${n}`,
    CONFAB_STREAM_REPLICAS: String(opts.replicas ?? 1),
  };
  return createNatsAdapters(loadConfig(env), log, { env });
}

describe('NATS single node', () => {
  let server: NatsServer & { close(): Promise<void> };
  before(async () => {
    server = await startNats({ jetstream: true });
  });
  after(async () => {
    await server?.close();
  });

  busContract('nats (single node)', async () => {
    const stream = `BUS${seq++}`;
    const a = await adapters(server.url, { stream });
    const b = await adapters(server.url, { stream });
    await a.history.close();
    await b.history.close();
    return {
      buses: [a.bus, b.bus],
      outage: {
        down: () => server.stop('SIGKILL'),
        up: () => server.start(),
      },
      close: async () => {
        await a.bus.close();
        await b.bus.close();
      },
    };
  });

  historyContract('jetstream (single node)', async (retention) => {
    const stream = `HS${seq++}`;
    let cur = await adapters(server.url, { retention, stream });
    await cur.bus.close();
    return {
      history: cur.history,
      reopen: async () => {
        await cur.history.close();
        cur = await adapters(server.url, { retention, stream });
        await cur.bus.close();
        return cur.history;
      },
      close: () => cur.history.close(),
    };
  });
});

describe('NATS three-node JetStream cluster, replicas 3', () => {
  let cluster: NatsCluster;
  before(async () => {
    cluster = await startNatsCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  busContract('nats (3-node cluster)', async () => {
    const stream = `BUS${seq++}`;
    const a = await adapters(cluster.servers[0]!.url, { stream });
    const b = await adapters(cluster.servers[1]!.url, { stream });
    await a.history.close();
    await b.history.close();
    return {
      buses: [a.bus, b.bus],
      outage: {
        down: async () => {
          await Promise.all(cluster.servers.map((s) => s.stop('SIGKILL')));
        },
        up: async () => {
          await Promise.all(cluster.servers.map((s) => s.start({ wait: false })));
          await Promise.all(cluster.servers.map((s) => waitHealthy(s)));
        },
      },
      close: async () => {
        await a.bus.close();
        await b.bus.close();
      },
    };
  });

  historyContract('jetstream (3-node cluster, R3)', async (retention) => {
    const stream = `HC${seq++}`;
    let cur = await adapters(cluster.urls, { retention, stream, replicas: 3 });
    await cur.bus.close();
    return {
      history: cur.history,
      reopen: async () => {
        await cur.history.close();
        cur = await adapters(cluster.urls, { retention, stream, replicas: 3 });
        await cur.bus.close();
        return cur.history;
      },
      close: () => cur.history.close(),
    };
  });
});
