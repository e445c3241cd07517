/**
 * R5 end to end on NATS: two gateways on one nats-server; the server goes away
 * completely and comes back. Meanwhile the gateways stay up, /readyz fails,
 * clients are told (`status` frames), every publish is rejected with a typed
 * error (none silently dropped), and afterwards everything recovers by itself:
 * readiness, subscriptions, cross-gateway delivery, one unbroken chain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { createSession, startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });
const ready = async (g: TestGateway) => (await fetch(`${g.url}/readyz`)).status;

describe('NATS fully down, then back (R5)', () => {
  let nats: NatsServer & { close(): Promise<void> };
  const gws: TestGateway[] = [];
  const clients: RawClient[] = [];
  before(async () => {
    nats = await startNats();
    for (let i = 0; i < 2; i++) {
      const env = { NATS_URL: nats.url, CONFAB_SECRET: TEST_SECRET, CONFAB_NODE_ID: `out${i}`, CONFAB_RATE_BURST: '200' };
      const { bus, history } = await createNatsAdapters(loadConfig(env), log, { env });
      gws.push(await startTestGateway({ bus, history, env }));
    }
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const g of gws) await g.close();
    await nats?.close();
  });

  it('gateways stay up, readiness fails, publishes get a typed error, and all recovers after', async () => {
    const sa = await createSession(gws[0]!.url, 'outage-a');
    const sb = await createSession(gws[1]!.url, 'outage-b');
    const a = await RawClient.connect(gws[0]!.wsUrl, sa.token);
    const b = await RawClient.connect(gws[1]!.wsUrl, sb.token);
    clients.push(a, b);
    for (const c of [a, b]) {
      c.send({ t: 'join', room: 'lobby' });
      await c.next('joined');
    }
    a.send({ t: 'pub', id: 'before', room: 'lobby', text: 'before' });
    await b.next('msg', (m) => m.id === 'before');
    assert.equal(await ready(gws[0]!), 200);

    await nats.stop('SIGKILL');
    await waitFor(async () => (await ready(gws[0]!)) === 503 && (await ready(gws[1]!)) === 503, { what: 'readiness fails on both gateways' });
    await a.next('status', (f) => f.bus === 'down');
    await b.next('status', (f) => f.bus === 'down');
    const sent = Array.from({ length: 5 }, (_, i) => `during${i}`);
    for (const id of sent) a.send({ t: 'pub', id, room: 'lobby', text: id });
    // the first is refused because the bus is down; the rest are fenced behind it, so nothing sent later is stored ahead of it (G9)
    for (const [i, id] of sent.entries()) {
      const e = await a.next('error', (f) => f.id === id);
      assert.equal(e.code, i === 0 ? 'bus_unavailable' : 'fenced');
    }
    assert.equal((await fetch(`${gws[0]!.url}/healthz`)).status, 200, 'the gateway itself stays alive');
    assert.equal(a.closeCode, undefined, 'clients stay connected');

    await nats.start();
    await waitFor(async () => (await ready(gws[0]!)) === 200 && (await ready(gws[1]!)) === 200, { timeoutMs: 20_000, what: 'readiness back' });
    await a.next('status', (f) => f.bus === 'up');
    // the client resends what was refused (as the SDK outbox does); each is stored once and reaches the other gateway
    for (const id of sent) a.send({ t: 'pub', id, room: 'lobby', text: id });
    for (const id of sent) assert.equal((await a.next('ack', (f) => f.id === id)).dup, false);
    await waitFor(() => sent.every((id) => b.msgs('lobby').some((m) => m.id === id)), { what: 'delivery after recovery' });
    const msgs = b.msgs('lobby');
    assert.deepEqual(msgs.map((m) => m.id), ['before', ...sent]);
    for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, 'one unbroken chain');
  });
});
