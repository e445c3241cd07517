/**
 * Three gateways on a three-node NATS JetStream cluster (history replicas 3),
 * each gateway connected to a different NATS node: cross-node delivery and
 * presence, interest-based subscriptions, one order for concurrent publishers
 * on different gateways (G1), resume on another gateway (G2), idempotent resend
 * through another gateway (G3), and a NATS node bounced under load with no
 * acknowledged message lost (R4).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createNatsAdapters } from '../../src/nats/index.js';
import { CountingBus } from '../../src/testkit/counting-bus.js';
import { TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNatsCluster, waitHealthy, type NatsCluster } from '../../src/procs/nats.js';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';
import { assertChain, publishConcurrently, steadyWriters, twoGateways, type GatewayFixture } from '../../src/testkit/two-gateways.js';

const log = pino({ level: 'silent' });

describe('three gateways on a three-node NATS cluster', () => {
  let cluster: NatsCluster;
  let fx: GatewayFixture<TestGateway>;
  let gws: TestGateway[] = [];
  const buses: CountingBus[] = [];
  const connect = (g: TestGateway, handle?: string) => fx.connect(g, handle);

  before(async () => {
    cluster = await startNatsCluster(3);
    // gateway i on NATS node i
    const env = (node: string, i: number) => ({
      NATS_URL: cluster.servers[i]!.url,
      CONFAB_SECRET: TEST_SECRET,
      CONFAB_NODE_ID: node,
      CONFAB_STREAM_REPLICAS: '3',
      CONFAB_PRESENCE_GRACE_MS: '3000',
      CONFAB_RATE_BURST: '500',
      CONFAB_RATE_PER_SEC: '500',
      NATS_REQUEST_TIMEOUT_MS: '2000',
    });
    fx = await twoGateways(env, ['gw0', 'gw1'], async (e, config) => {
      const { bus, history } = await createNatsAdapters(config, log, { env: e });
      const counting = new CountingBus(bus);
      buses.push(counting);
      return { bus: counting, history };
    });
    await fx.add('gw2');
    gws = fx.gws;
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('delivers across gateways in one order while publishers on every gateway write at once (G1)', async () => {
    const members = await Promise.all(gws.map((g) => connect(g)));
    const msgs = await publishConcurrently(members, 'busy', 40);
    for (let i = 0; i < 3; i++) assert.ok(msgs.filter((m) => m.id.startsWith(`n${i}k`)).every((m) => m.from.node === `gw${i}`), 'node stamped by the server');
  });

  it('subscribes only where there is interest: a gateway without members receives none of the room', async () => {
    const a = await connect(gws[0]!);
    const b = await connect(gws[1]!);
    await joinRoom(a.c, 'quiet');
    await joinRoom(b.c, 'quiet');
    for (let i = 0; i < 20; i++) a.c.send({ t: 'pub', id: `q${i}`, room: 'quiet', text: 'x' });
    await waitFor(() => b.c.msgs('quiet').length === 20, { what: 'delivery to the other gateway' });
    assert.equal(buses[2]!.count('room.quiet'), 0, 'gateway 2 has no member and received nothing');
    assert.ok(buses[1]!.count('room.quiet') >= 20);
    // NATS itself holds no interest from gateway 2 for the room
    const subjectsOn = async (i: number) => JSON.stringify((await cluster.servers[i]!.monitor('/subsz?subs=1')).body);
    assert.ok((await subjectsOn(0)).includes('"confab.room.quiet"'), 'gateway 0 (a member) holds a NATS subscription for the room');
    assert.ok(!(await subjectsOn(2)).includes('"confab.room.quiet"'), 'gateway 2 holds none');
    b.c.send({ t: 'leave', room: 'quiet' });
    await b.c.next('left');
    const onB = buses[1]!.count('room.quiet');
    a.c.send({ t: 'pub', id: 'q-after', room: 'quiet', text: 'x' });
    await a.c.next('ack', (f) => f.id === 'q-after');
    await a.c.next('msg', (m) => m.id === 'q-after');
    // the publisher's own echo proves the message went through NATS; the gateway that left got none
    await buses[0]!.flush();
    assert.equal(buses[1]!.count('room.quiet'), onB, 'the subscription is dropped with the last member');
    assert.ok(!gws[1]!.gw.core.hub.localRooms().has('quiet'));
  });

  it('shows presence across gateways', async () => {
    const a = await connect(gws[0]!, 'watcher');
    await joinRoom(a.c, 'pres');
    const b = await connect(gws[2]!, 'arriver');
    const j = await joinRoom(b.c, 'pres');
    assert.ok(j.members.some((m) => m.handle === 'watcher'), 'the member on another gateway is listed');
    const seen = await a.c.next('presence', (p) => p.user.handle === 'arriver');
    assert.equal(seen.event, 'join');
  });

  it('resumes on another gateway with exactly the missed messages, and a resend through another gateway is stored once (G2, G3)', async () => {
    const w = await connect(gws[0]!);
    await joinRoom(w.c, 'hop');
    const r = await connect(gws[1]!);
    const j = await joinRoom(r.c, 'hop');
    for (let i = 0; i < 5; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await waitFor(() => r.c.msgs('hop').length === 5);
    const lastSeen = r.c.msgs('hop').at(-1)!.offset;
    r.c.close();
    for (let i = 5; i < 12; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    const ack11 = await w.c.next('ack', (a) => a.id === 'h11');
    const r2 = await fx.reconnect(gws[2]!, r.s.token);
    const j2 = await joinRoom(r2, 'hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    // the writer resends h11 through another gateway (as after a lost ack): stored once
    const w2 = await fx.reconnect(gws[1]!, w.s.token);
    await joinRoom(w2, 'hop');
    w2.send({ t: 'pub', id: 'h11', room: 'hop', text: 'h11' });
    const dup = await w2.next('ack', (a) => a.id === 'h11');
    assert.equal(dup.dup, true);
    assert.equal(dup.offset, ack11.offset);
    w.c.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
    await r2.next('msg', (m) => m.id === 'live');
    assert.deepEqual(r2.msgs('hop').map((m) => m.text), [...Array.from({ length: 7 }, (_, i) => `h${i + 5}`), 'live']);
  });

  it('R4: each NATS node in turn killed or stopped and restarted under load: every acknowledged message reaches every member, in one order', async () => {
    const members = await Promise.all(gws.map((g) => connect(g)));
    for (const { c } of members) await joinRoom(c, 'bounce');
    const writers = steadyWriters(members, 'bounce', { forMs: 60_000, prefix: 'b', resendAfterMs: 100 });
    const { acked } = writers;
    await waitFor(() => acked.size >= 30, { what: 'load running', timeoutMs: 20_000 });
    // bounce every NATS node in turn (each gateway loses its own node once), SIGKILL then SIGTERM
    for (const [i, signal] of [[0, 'SIGKILL'], [1, 'SIGTERM'], [2, 'SIGKILL']] as const) {
      const victim = cluster.servers[i]!;
      await victim.stop(signal);
      const atKill = acked.size;
      await waitFor(() => acked.size >= atKill + 30, { what: `progress with node ${i} down`, timeoutMs: 30_000 });
      await victim.start();
      const atRestart = acked.size;
      await waitFor(() => acked.size >= atRestart + 30, { what: `progress after node ${i} restarted`, timeoutMs: 30_000 });
      for (const s of cluster.servers) await waitHealthy(s);
    }
    await writers.stop();
    await waitFor(() => members.every(({ c }) => [...acked].every((id) => c.msgs('bounce').some((m) => m.id === id))), { what: 'every acknowledged message at every member', timeoutMs: 30_000 });
    const orders = members.map(({ c }) => c.msgs('bounce').map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(orders[2], orders[0]);
    assertChain(members[0]!.c.msgs('bounce'), 'bounce');
  });
});
