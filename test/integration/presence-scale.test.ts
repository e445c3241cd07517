// test:serial: 20,000 users' presence through one nats-server takes both cores for seconds
/**
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
import { startNats } from '../../src/testkit/nats.js';
import { waitFor } from '../../src/testkit/wait.js';

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
});
