/**
 * Gateway processes (`confab start` with NATS_URL) on a three-node NATS cluster:
 * `kill -9` of the gateway a group of clients is on, every client resumes on the
 * other gateway with exactly what it missed (0 gaps, 0 duplicates), the killed
 * gateway's NATS connection and interest are gone, and SIGTERM releases the
 * other gateway's connection. Prints the resume times it measured (no timed assertion).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startNatsCluster, type NatsCluster } from '../../src/procs/nats.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const wsOf = (url: string) => url.replace(/^http/, 'ws') + '/ws';
const CLIENTS = 60;

describe('gateway processes on NATS', () => {
  let cluster: NatsCluster;
  const procs: GatewayProcess[] = [];
  const clients: RawClient[] = [];
  before(async () => {
    cluster = await startNatsCluster(3);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of procs) await p.kill();
    await cluster?.stop();
  });

  const spawn = async (node: string, natsIndex: number) => {
    const p = await spawnGateway({
      NATS_URL: cluster.servers[natsIndex]!.url,
      CONFAB_NODE_ID: node,
      CONFAB_STREAM_REPLICAS: '3',
      CONFAB_DRAIN_READY_DELAY_MS: '0',
      CONFAB_DRAIN_WINDOW_MS: '200',
      CONFAB_RATE_BURST: '500',
    }, { timeoutMs: 30_000 });
    procs.push(p);
    return p;
  };
  const connz = async (i: number) => (await cluster.servers[i]!.monitor('/connz?subs=1')).body as { connections: { name?: string; subscriptions_list?: string[] }[] };

  it('kill -9 of a gateway: its clients resume on another gateway with 0 gaps and 0 duplicates', async () => {
    const pA = await spawn('gwA', 0);
    const pB = await spawn('gwB', 1);
    const writerSession = await createSession(pB.url, 'writer');
    const writer = await RawClient.connect(wsOf(pB.url), writerSession.token);
    clients.push(writer);
    writer.send({ t: 'join', room: 'lobby' });
    await writer.next('joined');

    const readers = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
      const s = await createSession(pA.url, `reader${i}`);
      const c = await RawClient.connect(wsOf(pA.url), s.token);
      clients.push(c);
      c.send({ t: 'join', room: 'lobby' });
      const j = await c.next('joined');
      return { s, c, epoch: j.epoch };
    }));
    assert.ok((await connz(0)).connections.some((c) => c.name === 'confab-gwA'), 'gwA is connected to NATS under its node name');

    for (let i = 0; i < 10; i++) writer.send({ t: 'pub', id: `pre${i}`, room: 'lobby', text: `pre${i}` });
    await writer.next('ack', (a) => a.id === 'pre9');
    await waitFor(() => readers.every((r) => r.c.msgs('lobby').filter((m) => m.id.startsWith('pre')).length === 10), { what: 'readers have the first batch' });
    const seen = readers.map((r) => r.c.msgs('lobby').at(-1)!.offset);

    const killedAt = Date.now();
    await pA.kill();
    await waitFor(() => readers.every((r) => r.c.closeCode !== undefined), { what: 'readers see the crash' });
    // NATS notices the dead connection at once; its interest goes with it
    await waitFor(async () => !(await connz(0)).connections.some((c) => c.name === 'confab-gwA'), { what: 'gwA connection gone from NATS' });

    for (let i = 0; i < 10; i++) writer.send({ t: 'pub', id: `mid${i}`, room: 'lobby', text: `mid${i}` });
    await writer.next('ack', (a) => a.id === 'mid9');

    const times: number[] = [];
    const startedAt = Date.now();
    const fromKill = startedAt - killedAt;
    const resumed = await Promise.all(readers.map(async (r, i) => {
      const c = await RawClient.connect(wsOf(pB.url), r.s.token);
      clients.push(c);
      c.send({ t: 'join', room: 'lobby', since: { epoch: r.epoch, offset: seen[i]! } });
      const j = await c.next('joined', undefined, 20_000).catch((e: unknown) => {
        throw new Error(`reader ${i} not resumed; frames: ${JSON.stringify(c.frames).slice(0, 500)}`, { cause: e });
      });
      times.push(Date.now() - startedAt);
      return { c, j };
    }));
    writer.send({ t: 'pub', id: 'live', room: 'lobby', text: 'live' });
    for (const { c, j } of resumed) {
      assert.equal(j.recovered, true);
      assert.equal(j.gap, undefined);
      await c.next('msg', (m) => m.id === 'live');
      assert.deepEqual(c.msgs('lobby').map((m) => m.id), [...Array.from({ length: 10 }, (_, k) => `mid${k}`), 'live'], 'exactly the missed messages, then live');
      const msgs = c.msgs('lobby');
      for (let k = 1; k < msgs.length; k++) assert.equal(msgs[k]!.prev, msgs[k - 1]!.offset);
    }
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    console.log(`# resume on another gateway after kill -9 (${CLIENTS} clients reconnecting at once, each replaying 10 missed messages): p50 ${p(0.5)} ms, p99 ${p(0.99)} ms from reconnect; reconnects began ${fromKill} ms after the kill (crash detection + 10 publishes)`);

    // SIGTERM: gwB drains and releases its NATS connection
    const code = await pB.stop();
    assert.equal(code, 0);
    await waitFor(async () => !(await connz(1)).connections.some((c) => c.name === 'confab-gwB'), { what: 'gwB connection released' });
  });
});
