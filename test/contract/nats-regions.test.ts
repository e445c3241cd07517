/**
 * The Bus and History contract suites, unchanged, on two NATS regions (one
 * JetStream cluster each, joined by gateways) with a 20 ms round trip between
 * them (every gateway link through a WAN proxy): the two buses of a fixture are
 * in different regions; the history is sharded by home region (2 streams per
 * region) and its rooms live in syd while it is connected to ord, so every append,
 * read and resend crosses the WAN to the room's home (the "away" path).
 */
import { after, before, describe } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { startNatsRegions, type NatsRegions } from '../../src/testkit/nats-regions.js';
import { busContract } from './bus.contract.js';
import { historyContract, retentionEnv } from './history.contract.js';
import type { Retention } from '../../src/history/types.js';

const log = pino({ level: 'silent' });
let seq = 0;

async function adapters(url: string, stream: string, retention?: Retention) {
  const env = {
    NATS_URL: url,
    CONFAB_SECRET: 'contract-secret-0123456789',
    CONFAB_NODE_ID: `node${seq++}`,
    ...(retention ? retentionEnv(retention) : {}),
    CONFAB_STREAM_NAME: stream,
    CONFAB_NATS_PREFIX: stream.toLowerCase(),
    CONFAB_HOME_REGIONS: 'ord,syd',
    CONFAB_HOME_DEFAULT: 'syd',
    CONFAB_STREAM_SHARDS: '2',
    NATS_REQUEST_TIMEOUT_MS: '3000',
  };
  return createNatsAdapters(loadConfig(env), log, { env });
}

describe('NATS two regions, 20 ms WAN, history homed in the other region', () => {
  let wan: NatsRegions;
  before(async () => {
    wan = await startNatsRegions({ names: ['ord', 'syd'], latencyMs: 20 });
  });
  after(async () => {
    await wan?.stop();
  });
  const url = (region: string) => wan.region(region).cluster.urls;

  busContract('nats (two regions over a WAN)', async () => {
    const stream = `RB${seq++}`;
    const a = await adapters(url('ord'), stream);
    const b = await adapters(url('syd'), stream);
    await a.history.close();
    await b.history.close();
    return {
      buses: [a.bus, b.bus],
      close: async () => {
        await a.bus.close();
        await b.bus.close();
      },
    };
  });

  historyContract('jetstream (two regions over a WAN, sharded, rooms homed away)', async (retention) => {
    const stream = `RH${seq++}`;
    let cur = await adapters(url('ord'), stream, retention);
    await cur.bus.close();
    return {
      history: cur.history,
      reopen: async () => {
        await cur.history.close();
        cur = await adapters(url('ord'), stream, retention);
        await cur.bus.close();
        return cur.history;
      },
      close: () => cur.history.close(),
    };
  });
});
