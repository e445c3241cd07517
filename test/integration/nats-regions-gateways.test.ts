/**
 * Two regions (ord, syd; one NATS JetStream cluster each, joined by gateways over a
 * WAN proxy with a 60 ms round trip), one confab gateway per region, history homed
 * by region (`syd-…` rooms in syd, 2 streams per region). The multi-gateway
 * guarantees across the WAN: one order for concurrent senders in both regions
 * (G1), resume in the other region with exactly the missed messages and an
 * idempotent resend through the other region (G2, G3); and accepted at the edge:
 * a home-region member's send is acknowledged while the WAN is held (nothing of
 * it crosses), while a member in the other region waits for the WAN.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters, ShardedHistory, type NatsHistory } from '../../src/nats/index.js';
import { startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNatsRegions, type NatsRegions } from '../../src/testkit/nats-regions.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

describe('two regions over a 60 ms WAN, one gateway each, rooms homed by region', () => {
  let wan: NatsRegions;
  const gws: Record<string, TestGateway> = {};
  const histories: Record<string, NatsHistory> = {};
  const clients: RawClient[] = [];
  /** Subjects of the NATS messages that crossed the WAN, in order. */
  const crossed: string[] = [];
  let n = 0;
  const connect = (region: string, handle = `${region}m${n++}`) => RawClient.session(gws[region]!, handle, clients);

  before(async () => {
    wan = await startNatsRegions({ names: ['ord', 'syd'], latencyMs: 60, onMessage: (subject) => crossed.push(subject) });
    for (const region of ['ord', 'syd']) {
      const env = {
        NATS_URL: wan.region(region).cluster.urls,
        CONFAB_SECRET: TEST_SECRET,
        CONFAB_NODE_ID: `gw-${region}`,
        FLY_REGION: region,
        CONFAB_HOME_REGIONS: 'ord,syd',
        CONFAB_STREAM_SHARDS: '2',
        CONFAB_PRESENCE_GRACE_MS: '3000',
        CONFAB_RATE_BURST: '500',
        CONFAB_RATE_PER_SEC: '500',
        NATS_REQUEST_TIMEOUT_MS: '3000',
      };
      const { bus, history } = await createNatsAdapters(loadConfig(env), log, { env });
      histories[region] = history;
      gws[region] = await startTestGateway({ bus, history, env });
    }
  });
  after(async () => {
    wan?.release();
    for (const c of clients) c.close();
    for (const g of Object.values(gws)) await g.close();
    await wan?.stop();
  });

  it('delivers in one order while senders in both regions write at once (G1)', async () => {
    const members = [await connect('ord'), await connect('syd'), await connect('syd')];
    for (const { c } of members) await joinRoom(c, 'syd-busy');
    const per = 15;
    members.forEach(({ c }, i) => {
      for (let k = 0; k < per; k++) c.send({ t: 'pub', id: `n${i}k${k}`, room: 'syd-busy', text: `${i}:${k}` });
    });
    await waitFor(() => members.every(({ c }) => c.msgs('syd-busy').length === per * 3), { what: 'every member has every message', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs('syd-busy').map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(orders[2], orders[0]);
    const msgs = members[0]!.c.msgs('syd-busy');
    for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, 'no hole');
    const ord = histories.ord as ShardedHistory;
    assert.ok(ord instanceof ShardedHistory && ord.forwarded >= per, `ord's appends to a syd room were accepted in syd (forwarded ${ord.forwarded})`);
    for (let i = 0; i < 3; i++) {
      const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`)).map((m) => Number(m.id.slice(m.id.indexOf('k') + 1)));
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b), 'each sender keeps its own order');
    }
  });

  it('resumes in the other region with exactly the missed messages; a resend through the other region is stored once (G2, G3)', async () => {
    const w = await connect('ord');
    await joinRoom(w.c, 'syd-hop');
    const r = await connect('syd');
    const j = await joinRoom(r.c, 'syd-hop');
    for (let i = 0; i < 4; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'syd-hop', text: `h${i}` });
    await waitFor(() => r.c.msgs('syd-hop').length === 4);
    const lastSeen = r.c.msgs('syd-hop').at(-1)!.offset;
    r.c.close();
    for (let i = 4; i < 9; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'syd-hop', text: `h${i}` });
    const ack8 = await w.c.next('ack', (a) => a.id === 'h8');
    // the reader comes back in the other region (ord), the writer resends its last id through syd
    const r2 = await RawClient.connect(gws.ord!.wsUrl, r.s.token);
    clients.push(r2);
    const j2 = await joinRoom(r2, 'syd-hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    const w2 = await RawClient.connect(gws.syd!.wsUrl, w.s.token);
    clients.push(w2);
    await joinRoom(w2, 'syd-hop');
    w2.send({ t: 'pub', id: 'h8', room: 'syd-hop', text: 'h8' });
    const dup = await w2.next('ack', (a) => a.id === 'h8');
    assert.equal(dup.dup, true);
    assert.equal(dup.offset, ack8.offset);
    w.c.send({ t: 'pub', id: 'live', room: 'syd-hop', text: 'live' });
    await r2.next('msg', (m) => m.id === 'live');
    assert.deepEqual(r2.msgs('syd-hop').map((m) => m.text), ['h4', 'h5', 'h6', 'h7', 'h8', 'live']);
  });

  it('acknowledges a home-region member without the WAN: acked while the WAN is held, nothing of the room crosses; a member elsewhere waits for it', async () => {
    const home = await connect('syd');
    const away = await connect('ord');
    await joinRoom(home.c, 'syd-edge');
    // warm up: the room's stream and last offset are known on both gateways
    home.c.send({ t: 'pub', id: 'warm', room: 'syd-edge', text: 'warm' });
    await home.c.next('ack', (a) => a.id === 'warm');
    await joinRoom(away.c, 'syd-edge');
    away.c.send({ t: 'pub', id: 'warm-away', room: 'syd-edge', text: 'warm' });
    await away.c.next('ack', (a) => a.id === 'warm-away');
    away.c.send({ t: 'leave', room: 'syd-edge' });
    await away.c.next('left');
    await new Promise((r) => setTimeout(r, 200)); // the leave's interest change crosses the WAN (60 ms) before counting starts
    const roomSubjects = (from: number) => crossed.slice(from).filter((s) => s.endsWith('.syd-edge'));

    // counted: home-region sends, no member elsewhere: none of the room's messages crosses the WAN
    const mark = crossed.length;
    for (let i = 0; i < 5; i++) {
      home.c.send({ t: 'pub', id: `home${i}`, room: 'syd-edge', text: `home${i}` });
      await home.c.next('ack', (a) => a.id === `home${i}`);
    }
    assert.deepEqual(roomSubjects(mark), [], 'the stored messages and their fan-out stayed in syd');

    // held: the WAN carries nothing, the home member is acknowledged and delivered anyway (its fan-out to the
    // member in ord waits in the WAN); the member in ord is not
    await joinRoom(away.c, 'syd-edge');
    wan.hold();
    try {
      const before = wan.proxies.reduce((a, p) => a + p.stats().out.messages + p.stats().back.messages, 0);
      away.c.send({ t: 'pub', id: 'away-held', room: 'syd-edge', text: 'from ord' });
      home.c.send({ t: 'pub', id: 'home-held', room: 'syd-edge', text: 'from syd' });
      const ack = await home.c.next('ack', (a) => a.id === 'home-held', 5_000);
      assert.ok(ack.offset > 0);
      await home.c.next('msg', (m) => m.id === 'home-held', 5_000);
      const after = wan.proxies.reduce((a, p) => a + p.stats().out.messages + p.stats().back.messages, 0);
      assert.equal(after, before, 'nothing crossed the WAN while the home member was acknowledged');
      assert.equal(away.c.frames.some((f) => f.t === 'ack' && f.id === 'away-held'), false, 'the member in ord is not acknowledged while the WAN is held');
    } finally {
      wan.release();
    }
    // released: the away member's send reaches the home region, is stored once, and crossed the WAN to get there
    const late = await away.c.next('ack', (a) => a.id === 'away-held', 10_000).catch((e: unknown) => {
      throw new Error(`no ack for away-held; frames: ${JSON.stringify(away.c.frames.slice(-4))}`, { cause: e });
    });
    await home.c.next('msg', (m) => m.id === 'away-held', 10_000);
    assert.ok(late.offset > 0);
    const toHome = crossed.slice(mark).filter((s) => s.endsWith('.append.syd') || (s.includes('.hs.syd.') && s.endsWith('.syd-edge')));
    assert.ok(toHome.length > 0, 'the away append crossed the WAN to the home region');
  });

  it('answers a malformed forwarded append with bad_frame and stores nothing', async () => {
    const nc = await natsConnect({ servers: wan.region('ord').cluster.urls });
    try {
      for (const body of ['not json', '{"room":"syd-x"}', JSON.stringify({ room: 'syd-x', id: 'a', kind: 'html', text: 'x', ts: 1, from: { user: 'u', handle: 'h', node: 'n', region: 'ord' } })]) {
        const r = await nc.request('confab.append.syd', new TextEncoder().encode(body), { timeout: 5000 });
        const reply = JSON.parse(new TextDecoder().decode(r.data)) as { err?: { code: string } };
        assert.equal(reply.err?.code, 'bad_frame', body);
      }
      assert.equal((await histories.syd!.info('syd-x')).last, 0, 'nothing stored');
    } finally {
      await nc.close();
    }
  });
});
