// test:serial: 20,000 users' presence through one nats-server takes both cores for seconds
/**
 * Issue 15 item 4: with 20,000 users over NATS, presence traffic is proportional to changes:
 * no message above max_payload, idle traffic per gateway within a budget that does not grow
 * with the population (heartbeats only), bytes per change bounded, a newcomer's tables sent
 * to it alone (src/bench/presence-traffic.ts counts; docs/scaling.md has the figures).
 *
 * G11 / issue 11: presence crosses the bus in chunks under the bus's payload limit. A node
 * with 20,000 users answers a newcomer's `hello` with its whole table: as one message that
 * would be far over NATS's default max_payload (1 MiB), so it goes in STATE_CHUNK-entry parts,
 * and the newcomer ends up with every user, over a real nats-server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { Presence, STATE_CHUNK } from '../../src/gateway/presence.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { startNats } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';
import { measurePresenceTraffic } from '../../src/bench/presence-traffic.js';

const log = pino({ level: 'silent' });
const USERS = 20_000;

describe('presence of a busy node crosses NATS in chunks', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  const closers: (() => Promise<void> | void)[] = [];
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    await nats?.close();
  });

  async function node(name: string) {
    const env = { NATS_URL: nats.url, CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: name, CONFAB_STREAM_NAME: 'PRES', CONFAB_NATS_PREFIX: 'pres' };
    const a = await createNatsAdapters(loadConfig(env), log, { env });
    closers.push(() => a.bus.close(), () => a.history.close());
    let leaves = 0;
    const p = new Presence({ node: name, bus: a.bus, graceMs: 0, onJoin: () => {}, onLeave: () => leaves++, onError: (err) => log.error({ err }) });
    closers.push(() => p.stop());
    return { p, leaves: () => leaves };
  }

  it(`a newcomer learns all ${USERS} users of a node from its chunked state`, async () => {
    const a = await node('busy');
    a.p.start();
    const users = Array.from({ length: USERS }, (_, i) => ({ id: `u${i.toString().padStart(6, '0')}-${'x'.repeat(24)}`, handle: `handle-${i}` }));
    for (const u of users) a.p.add('big', u);
    const whole = JSON.stringify({ k: 'state', node: 'busy', e: users.map((u) => ['big', u.id, u.handle]) });
    assert.ok(Buffer.byteLength(whole) > 1024 * 1024, `one message would be ${Buffer.byteLength(whole)} bytes, over the 1 MiB max_payload`);
    assert.ok(USERS / STATE_CHUNK >= 10);

    const b = await node('newcomer');
    b.p.start(); // says hello: every node answers with its state
    await waitFor(() => b.p.size('big') === USERS, { timeoutMs: 30_000, what: `newcomer sees ${USERS} users (has ${b.p.size('big')})` });
    a.p.remove('big', users[0]!, true);
    await waitFor(() => b.p.size('big') === USERS - 1, { timeoutMs: 10_000, what: 'a leave crosses too' });
    assert.equal(b.leaves(), 1);
  });

  it(`${USERS} users on 2 gateways: bounded messages, idle traffic is heartbeats only, bytes per change bounded`, async () => {
    const hb = 300; // a periodic table every 15 heartbeats (the design before deltas) would fall inside the idle window
    const r = await measurePresenceTraffic({
      natsUrl: nats.url,
      monitor: (p) => nats.monitor(p),
      gateways: 2,
      users: USERS,
      roomsPerUser: 1,
      roomPool: 500,
      idleSec: 4.8,
      reconnectsPerSec: 100,
      churnSec: 2,
      heartbeatMs: hb,
    });
    const maxPayload = (await nats.monitor('/varz')).body.max_payload as number;
    assert.ok(maxPayload > 0);
    assert.ok(r.maxMessageBytes <= Math.min(maxPayload, 256 * 1024), `largest presence message ${r.maxMessageBytes} bytes (max_payload ${maxPayload})`);
    // idle: each gateway hears its own and the other's heartbeat, ~110 bytes each, 3.3 per second each.
    // The table (40,000 entries, ~2 MB) crossing once per minute would alone be ~35,000 B/s.
    const IDLE_BUDGET = 1500;
    assert.ok(r.idle.inBps <= IDLE_BUDGET, `idle presence in ${r.idle.inBps.toFixed(0)} B/s per gateway, budget ${IDLE_BUDGET}`);
    assert.ok(r.idle.outBps <= IDLE_BUDGET / 2, `idle presence out ${r.idle.outBps.toFixed(0)} B/s per gateway`);
    assert.ok(r.churn, 'churn phase ran');
    assert.ok(r.churn.opsPerSec > 100, `churn made ${r.churn.opsPerSec} changes/s`);
    assert.ok(r.churn.inBytesPerOp <= 150, `${r.churn.inBytesPerOp.toFixed(1)} bytes per presence change per gateway (budget 150)`);
    // a newcomer receives the tables (on its own subject); the others receive a few small messages meanwhile
    assert.ok(r.newcomer.inBytes >= r.entries * 20, `the newcomer received ${r.newcomer.inBytes} bytes of tables`);
    assert.ok(r.newcomer.othersInBytes <= 20_000, `each other gateway received ${r.newcomer.othersInBytes} bytes while the newcomer joined`);
  });
});
