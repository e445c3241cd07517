/**
 * R13: one epoch per history from the first second. Gateways that open a fresh R3
 * stream at the same moment, each through a different server of the cluster, agree
 * on its epoch (it lives in the replicated stream config, not in a replica's own
 * creation time), and a leader change does not change it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { startNatsCluster, type NatsCluster } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

async function open(url: string, node: string, stream: string) {
  const env = { NATS_URL: url, CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: node, CONFAB_STREAM_NAME: stream, CONFAB_NATS_PREFIX: stream.toLowerCase(), CONFAB_STREAM_REPLICAS: '3', NATS_REQUEST_TIMEOUT_MS: '3000' };
  const a = await createNatsAdapters(loadConfig(env), log, { env });
  await a.bus.close();
  return a.history;
}

describe('R13: a fresh R3 stream has one epoch from the first second', () => {
  let cluster: NatsCluster;
  before(async () => {
    cluster = await startNatsCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('gateways opening new streams at once through different servers agree on the epoch, also after a leader change', async () => {
    for (let k = 0; k < 6; k++) {
      const stream = `EPOCH${k}`;
      const settled = await Promise.allSettled(cluster.servers.map((s, i) => open(s.url, `gw${i}`, stream)));
      const hs = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        for (const r of settled) if (r.status === 'rejected') throw r.reason;
        const epochs = hs.map((h) => h.epoch);
        assert.equal(new Set(epochs).size, 1, `${stream}: one epoch, got ${epochs.join(' ')}`);
        assert.match(epochs[0]!, /^js\d{14}[0-9a-f]{6}$/);
      } finally {
        for (const h of hs) await h.close();
      }
    }
    // the stream leader goes away: the new leader reports the same epoch
    const before = await open(cluster.servers[0]!.url, 'gw-a', 'EPOCH0');
    const epoch = before.epoch;
    await before.close();
    const nc = await connect({ servers: cluster.urls.split(',') });
    try {
      const jsm = await jetstreamManager(nc);
      const leader = (await jsm.streams.info('EPOCH0')).cluster?.leader;
      const victim = cluster.servers.find((s) => s.name === leader);
      assert.ok(victim, `leader ${leader} found`);
      await victim.stop('SIGKILL');
      await waitFor(async () => {
        const l = await jsm.streams.info('EPOCH0').then((i) => i.cluster?.leader, () => undefined);
        return l !== undefined && l !== leader;
      }, { timeoutMs: 20_000, what: 'a new stream leader' });
      const other = cluster.servers.find((s) => s !== victim)!;
      const afterChange = await open(other.url, 'gw-b', 'EPOCH0');
      assert.equal(afterChange.epoch, epoch, 'a leader change keeps the epoch');
      await afterChange.close();
      await victim.start();
    } finally {
      await nc.close();
    }
  });
});
