/**
 * Two gateways (in-process, different nodes, one CONFAB_SECRET) over Redis
 * adapters on one redis-server with appendonly + appendfsync always:
 * cross-node delivery in one order with publishers on both gateways (G1);
 * resume on the other gateway after the first one is closed, with 0 gaps and
 * 0 duplicates (G2); an idempotent resend through the other gateway (G3); and
 * redis-server killed (-9) and restarted under load: readiness fails while it
 * is down, every publish is acknowledged or rejected with a typed error, and
 * every acknowledged message reaches every member in one order (R5, G8).
 * And with RDB snapshots only: a Redis crash that loses acknowledged messages
 * makes a resuming client get `reset`, never a `recovered` with reused offsets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createRedisAdapters } from '../../src/redis/index.js';
import { TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { assertChain, publishConcurrently, steadyWriters, twoGateways, type GatewayFixture } from '../../src/testkit/two-gateways.js';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

describe('two gateways over Redis', () => {
  let redis: RedisServer;
  let fx: GatewayFixture<TestGateway>;
  let gws: TestGateway[] = [];
  const env = (node: string) => ({
    REDIS_URL: redis.url,
    CONFAB_SECRET: TEST_SECRET,
    CONFAB_NODE_ID: node,
    CONFAB_REDIS_PREFIX: `gw${process.pid}`,
    CONFAB_REDIS_RECONNECT_MAX_MS: '200',
    CONFAB_PRESENCE_GRACE_MS: '3000',
    CONFAB_RATE_BURST: '500',
    CONFAB_RATE_PER_SEC: '500',
  });
  const connect = (g: TestGateway, handle?: string) => fx.connect(g, handle);

  before(async () => {
    redis = await startRedis({ appendonly: 'always' });
    fx = await twoGateways(env, ['rgw0', 'rgw1'], (e, config) => createRedisAdapters(config, log, { env: e }));
    gws = fx.gws;
  });
  after(async () => {
    await fx?.close();
    await redis?.close();
  });

  it('delivers across gateways in one order while both gateways publish at once (G1)', async () => {
    const members = [await connect(gws[0]!), await connect(gws[1]!), await connect(gws[1]!)];
    const msgs = await publishConcurrently(members, 'busy', 50);
    for (let i = 0; i < members.length; i++) {
      assert.ok(msgs.filter((m) => m.id.startsWith(`n${i}k`)).every((m) => m.from.node === (i === 0 ? 'rgw0' : 'rgw1')), 'node stamped by the server');
    }
  });

  it('resumes on the other gateway after the first is closed: exactly the missed messages, then live, 0 gaps, 0 duplicates (G2, G3)', async () => {
    const g2 = await fx.add('rgw2');
    const writer = await connect(gws[1]!);
    await joinRoom(writer.c, 'hop');
    const reader = await connect(g2);
    const j = await joinRoom(reader.c, 'hop');
    for (let i = 0; i < 5; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await waitFor(() => reader.c.msgs('hop').length === 5, { what: 'first five on the reader' });
    const lastSeen = reader.c.msgs('hop').at(-1)!.offset;
    await g2.close();
    await reader.c.closed();
    for (let i = 5; i < 12; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    const ack11 = await writer.c.next('ack', (a) => a.id === 'h11');
    const again = await fx.reconnect(gws[0]!, reader.s.token);
    const j2 = await joinRoom(again, 'hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    assert.equal(j2.reset, undefined);
    assert.equal(j2.epoch, j.epoch);
    // the writer resends h11 through the other gateway (as after a lost ack): stored once
    const w2 = await fx.reconnect(gws[0]!, writer.s.token);
    await joinRoom(w2, 'hop');
    w2.send({ t: 'pub', id: 'h11', room: 'hop', text: 'h11' });
    const dup = await w2.next('ack', (a) => a.id === 'h11');
    assert.equal(dup.dup, true);
    assert.equal(dup.offset, ack11.offset);
    writer.c.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
    await again.next('msg', (m) => m.id === 'live');
    const got = again.msgs('hop');
    assert.deepEqual(got.map((m) => m.text), [...Array.from({ length: 7 }, (_, i) => `h${i + 5}`), 'live']);
    assert.equal(got[0]!.prev, lastSeen, 'the replay starts right after the last message seen');
    assertChain(got, 'hop');
  });

  it('redis-server killed and restarted under load: readiness fails, typed errors only, every acknowledged message everywhere in one order (R5)', async () => {
    const [g0, g1] = gws;
    const members = [await connect(g0!), await connect(g1!)];
    for (const { c } of members) await joinRoom(c, 'outage');
    const writers = steadyWriters(members, 'outage', { forMs: 40_000 });
    const { acked, errors } = writers;
    await waitFor(() => acked.size >= 20, { what: 'load running', timeoutMs: 20_000 });
    await redis.kill();
    await waitFor(async () => (await fetch(`${g0!.url}/readyz`)).status === 503, { what: 'readyz 503 while redis is down', timeoutMs: 10_000 });
    assert.equal((await fetch(`${g1!.url}/healthz`)).status, 200, 'the gateway stays alive');
    const before = writers.refused();
    await waitFor(() => writers.refused() > before, { what: 'a publish rejected while redis is down', timeoutMs: 10_000 });
    assert.ok([...errors.keys()].every((code) => code === 'bus_unavailable' || code === 'store_failed'), `typed errors only: ${[...errors.keys()]}`);
    await redis.start();
    await waitFor(async () => (await fetch(`${g0!.url}/readyz`)).status === 200 && (await fetch(`${g1!.url}/readyz`)).status === 200, { what: 'ready again', timeoutMs: 15_000 });
    const atRestart = acked.size;
    await waitFor(() => acked.size >= atRestart + 20, { what: 'progress after redis restarted', timeoutMs: 20_000 });
    await writers.stop();
    await waitFor(() => members.every(({ c }) => [...acked].every((id) => c.msgs('outage').some((m) => m.id === id))), { what: 'every acknowledged message at every member', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs('outage').map((m) => `${m.epoch}:${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    const msgs = members[0]!.c.msgs('outage');
    assert.equal(new Set(msgs.map((m) => m.epoch)).size, 1, 'appendfsync always: the epoch survives a crash');
    assertChain(msgs, 'outage');
  });
});

describe('a gateway over Redis that crashes and loses its tail (RDB snapshots)', () => {
  let redis: RedisServer;
  let fx: GatewayFixture<TestGateway>;
  let gws: TestGateway[] = [];
  before(async () => {
    redis = await startRedis();
    const env = (node: string) => ({ REDIS_URL: redis.url, CONFAB_SECRET: TEST_SECRET, CONFAB_NODE_ID: node, CONFAB_REDIS_RECONNECT_MAX_MS: '200' });
    fx = await twoGateways(env, ['crash0', 'crash1'], (e, config) => createRedisAdapters(config, log, { env: e }));
    gws = fx.gws;
  });
  after(async () => {
    await fx?.close();
    await redis?.close();
  });

  it('tells a resuming client `reset` (never `recovered`) when offsets it saw were lost and reused', async () => {
    const [g0, g1] = gws;
    const { c: r, s: reader } = await fx.connect(g0!, 'crash-reader');
    const { c: w } = await fx.connect(g1!, 'crash-writer');
    const j = await joinRoom(r, 'lobby');
    await joinRoom(w, 'lobby');
    for (let i = 0; i < 3; i++) w.send({ t: 'pub', id: `s${i}`, room: 'lobby', text: `saved ${i}` });
    await w.next('ack', (a) => a.id === 's2');
    assert.equal(await redis.command('SAVE'), 'OK');
    for (let i = 3; i < 5; i++) w.send({ t: 'pub', id: `s${i}`, room: 'lobby', text: `lost ${i}` });
    await w.next('ack', (a) => a.id === 's4');
    await waitFor(() => r.msgs('lobby').length === 5, { what: 'reader saw offsets 1..5' });
    const seen = r.msgs('lobby').at(-1)!;
    assert.equal(seen.offset, 5);
    r.close();
    await r.closed();
    await redis.kill();
    await redis.start();
    await waitFor(async () => (await fetch(`${g1!.url}/readyz`)).status === 200, { what: 'writer gateway ready', timeoutMs: 15_000 });
    // offsets 4 and 5 are written again, with other content
    for (let i = 0; i < 2; i++) {
      await waitFor(async () => {
        const from = w.frames.length;
        w.send({ t: 'pub', id: `n${i}`, room: 'lobby', text: `new ${i}` });
        await waitFor(() => w.frames.slice(from).some((f) => (f.t === 'ack' || f.t === 'error') && f.id === `n${i}`), { what: `reply to n${i}` });
        return w.frames.slice(from).some((f) => f.t === 'ack' && f.id === `n${i}`);
      }, { what: `n${i} acknowledged`, timeoutMs: 10_000, intervalMs: 50 });
    }
    const n1 = w.all('ack').find((a) => a.id === 'n1')!;
    assert.equal(n1.offset, 5, 'offset 5 now holds another message');
    assert.notEqual(n1.epoch, j.epoch);
    const r2 = await fx.reconnect(g0!, reader.token);
    const j2 = await joinRoom(r2, 'lobby', { epoch: seen.epoch, offset: seen.offset });
    assert.equal(j2.recovered, false);
    assert.equal(j2.reset, true);
    assert.equal(j2.epoch, n1.epoch);
    await waitFor(() => r2.msgs('lobby').some((m) => m.text === 'new 1'), { what: 'the recent messages after the reset' });
    assert.deepEqual(r2.msgs('lobby').map((m) => m.text), ['saved 0', 'saved 1', 'saved 2', 'new 0', 'new 1']);
  });
});
