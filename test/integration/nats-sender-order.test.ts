/**
 * G9 / R12: a sender's order survives store failures. nats.js errors are classified by
 * the library's classes and JetStream API codes (checked here with errors a real
 * nats-server produces); a stream that loses its leader is retried within a bounded
 * time; and when an append does fail, nothing the same connection sent after it is
 * stored ahead of it (the gateway fences the room until the failed message is resent,
 * the SDK resends in order).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { jetstream, jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ConfabClient, MemoryStorage, type ClientError } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { isTransientNatsError } from '../../src/nats/errors.js';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, startNatsCluster, type NatsCluster } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

describe('nats.js errors are classified by class and JetStream API code (real server)', () => {
  it('timeouts and "no stream leader" are transient; API refusals are not', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const nc = await connect({ servers: s.url });
    t.after(() => nc.close());
    // a request nobody answers in time
    nc.subscribe('silent.>', { callback: () => {} });
    const timeout = await nc.request('silent.x', 'q', { timeout: 100 }).then(() => undefined, (e: unknown) => e);
    assert.ok(timeout instanceof Error, 'request timed out');
    assert.equal(isTransientNatsError(timeout), true, `timeout is transient: ${String(timeout)}`);
    // a JetStream publish that meets no responders (what a stream without a leader looks like)
    const js = jetstream(nc, { timeout: 500 });
    const noLeader = await js.publish('nobody.home', 'x').then(() => undefined, (e: unknown) => e);
    assert.ok(noLeader instanceof Error, 'publish without a stream failed');
    assert.equal(isTransientNatsError(noLeader), true, `no responders is transient: ${String(noLeader)}`);
    // API refusals are final
    const jsm = await jetstreamManager(nc);
    const notFound = await jsm.streams.info('NOPE').then(() => undefined, (e: unknown) => e);
    assert.ok(notFound instanceof JetStreamApiError && notFound.code === 10059, `stream not found: ${String(notFound)}`);
    assert.equal(isTransientNatsError(notFound), false);
    await jsm.streams.add({ name: 'ORD', subjects: ['ord.>'] });
    const wrongLast = await js.publish('ord.a', 'x', { expect: { lastSubjectSequence: 42 } }).then(() => undefined, (e: unknown) => e);
    assert.ok(wrongLast instanceof JetStreamApiError && wrongLast.code === 10071, `wrong last sequence: ${String(wrongLast)}`);
    assert.equal(isTransientNatsError(wrongLast), false);
    assert.equal(isTransientNatsError(new Error('TimeoutError')), false, 'a plain Error named like a timeout is not one');
  });
});

describe('R12: a single sender keeps its order while the stream loses its quorum', () => {
  let cluster: NatsCluster;
  let gw: GatewayProcess;
  const env = (c: NatsCluster) => ({
    NATS_URL: c.urls,
    CONFAB_NODE_ID: 'order-gw',
    CONFAB_STREAM_NAME: 'ORDER',
    CONFAB_NATS_PREFIX: 'order',
    CONFAB_STREAM_REPLICAS: '3',
    NATS_REQUEST_TIMEOUT_MS: '700',
    CONFAB_RATE_PER_SEC: '200',
    CONFAB_RATE_BURST: '200',
  });
  before(async () => {
    cluster = await startNatsCluster(3);
    gw = await spawnGateway(env(cluster));
  });
  after(async () => {
    await gw?.stop();
    await cluster?.stop();
  });

  it('every message is stored once, in the order sent, and the gateway stays up', async () => {
    const { token } = await createSession(gw.url, 'orderly');
    const c = new ConfabClient({ url: gw.url, token, WebSocket, storage: new MemoryStorage(), backoff: { minMs: 100, maxMs: 1000 } });
    const errors: ClientError[] = [];
    c.on('error', (e) => errors.push(e));
    c.connect();
    try {
      await c.join('ordered');
      const total = 100;
      const sent: string[] = [];
      const acks: Promise<unknown>[] = [];
      let outage: Promise<void> | undefined;
      for (let i = 0; i < total; i++) {
        acks.push(c.send('ordered', `m${i}`));
        sent.push(c.pending.at(-1)!.id);
        if (i === 15) {
          // meanwhile, take two of three servers away (no quorum, no leader) for longer than an append's retry window
          const downs = cluster.servers.slice(1);
          outage = (async () => {
            await Promise.all(downs.map((s) => s.stop('SIGKILL')));
            await new Promise((r) => setTimeout(r, 3000)); // the outage itself
            await Promise.all(downs.map((s) => s.start()));
          })();
        }
        await new Promise((r) => setTimeout(r, 40)); // the sender's pace (about 25 messages a second)
      }
      await outage;
      const failedOver = outage !== undefined;
      assert.ok(failedOver);
      await Promise.all(acks);
      await waitFor(() => c.pending.length === 0, { timeoutMs: 30_000, what: 'outbox empty' });

      const e = { ...env(cluster), CONFAB_SECRET: 'x'.repeat(20) };
      const reader = await createNatsAdapters(loadConfig(e), log, { env: e });
      try {
        const stored = (await reader.history.read('ordered', 0, 1000)).messages;
        const ids = stored.map((m) => m.id);
        assert.equal(new Set(ids).size, ids.length, 'no message stored twice');
        assert.deepEqual(ids, sent, `stored in the order sent (errors seen: ${errors.map((x) => x.code).join(',') || 'none'})`);
      } finally {
        await reader.bus.close();
        await reader.history.close();
      }
      for (const err of errors) assert.ok(['store_failed', 'bus_unavailable', 'fenced'].includes(String(err.code)), `typed, retryable error: ${err.code}`);
      const ready = await fetch(`${gw.url}/readyz`);
      assert.equal(ready.status, 200, 'gateway up and ready after the outage');
    } finally {
      c.close();
    }
  });
});
