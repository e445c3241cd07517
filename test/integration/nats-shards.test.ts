/**
 * Sharded history (CONFAB_STREAM_SHARDS=4, replicas 3) on a three-node JetStream
 * cluster, two gateways: rooms spread over the four streams, each room in exactly
 * one; and a shard's stream leader killed (SIGKILL) while two senders on two
 * gateways write one of its rooms: every acknowledged message reaches both members
 * in one order with no hole and no duplicate (G1, G9), a reader that left before
 * the failover resumes after it with exactly what it missed (G2), and a room of
 * another shard keeps working meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createNatsAdapters, streamOf, type NatsHistory } from '../../src/nats/index.js';
import type { StreamSettings } from '../../src/nats/options.js';
import { startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNatsCluster, waitHealthy, type NatsCluster } from '../../src/procs/nats.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });
const SHARDS = { regions: [], homes: [], shards: 4 };
const stream = (room: string) => streamOf({ name: 'SH' } as StreamSettings, SHARDS, room);

describe('four history shards on a three-node NATS cluster (replicas 3)', () => {
  let cluster: NatsCluster;
  const gws: TestGateway[] = [];
  const histories: NatsHistory[] = [];
  const clients: RawClient[] = [];
  let n = 0;
  const connectTo = (g: TestGateway) => RawClient.session(g, `s${n++}`, clients);

  before(async () => {
    cluster = await startNatsCluster(3);
    for (let i = 0; i < 2; i++) {
      const env = {
        NATS_URL: cluster.urls,
        CONFAB_SECRET: TEST_SECRET,
        CONFAB_NODE_ID: `gw${i}`,
        CONFAB_STREAM_NAME: 'SH',
        CONFAB_STREAM_SHARDS: '4',
        CONFAB_STREAM_REPLICAS: '3',
        CONFAB_REPLAY_MAX: '5000',
        CONFAB_RATE_BURST: '500',
        CONFAB_RATE_PER_SEC: '500',
        NATS_REQUEST_TIMEOUT_MS: '2000',
      };
      const { bus, history } = await createNatsAdapters(loadConfig(env), log, { env });
      histories.push(history);
      gws.push(await startTestGateway({ bus, history, env }));
    }
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const g of gws) await g.close();
    await cluster?.stop();
  });

  it('spreads rooms over the four streams, each room stored in exactly the stream its name hashes to', async () => {
    const rooms = Array.from({ length: 12 }, (_, i) => `spread${i}`);
    const { c } = await connectTo(gws[0]!);
    for (const room of rooms) {
      await joinRoom(c, room);
      c.send({ t: 'pub', id: `m-${room}`, room, text: room });
      await c.next('ack', (a) => a.id === `m-${room}`);
    }
    const nc = await connect({ servers: cluster.servers[0]!.url });
    try {
      const jsm = await jetstreamManager(nc);
      const held = new Map<string, string[]>();
      for (let k = 0; k < 4; k++) {
        const info = await jsm.streams.info(`SH_${k}`, { subjects_filter: '>' });
        held.set(`SH_${k}`, Object.keys(info.state.subjects ?? {}).map((s) => s.slice(s.lastIndexOf('.') + 1)));
      }
      for (const room of rooms) {
        const where = [...held].filter(([, rs]) => rs.includes(room)).map(([s]) => s);
        assert.deepEqual(where, [stream(room)], `${room} is in exactly its shard`);
      }
      assert.ok([...held.values()].filter((rs) => rs.some((r) => r.startsWith('spread'))).length >= 3, 'twelve rooms land on at least three of four shards');
    } finally {
      await nc.close();
    }
  });

  it("keeps one order and resume across a shard's leader failover (SIGKILL)", async () => {
    const room = 'failover';
    const other = ['bystander0', 'bystander1', 'bystander2', 'bystander3'].find((r) => stream(r) !== stream(room))!;
    const a = await connectTo(gws[0]!);
    const b = await connectTo(gws[1]!);
    const reader = await connectTo(gws[1]!);
    for (const m of [a, b]) await joinRoom(m.c, room);
    const j = await joinRoom(reader.c, room);
    await joinRoom(a.c, other);
    const acked = new Set<string>();
    let stop = false;
    const deadline = Date.now() + 40_000;
    const writers = [a, b].map(async ({ c }, i) => {
      for (let k = 0; !stop && Date.now() < deadline; k++) {
        const id = `w${i}-${k}`;
        while (Date.now() < deadline) {
          const from = c.frames.length;
          c.send({ t: 'pub', id, room, text: id });
          const reply = await c.next('ack', (x) => x.id === id, 8_000).catch(() => undefined);
          if (reply) {
            acked.add(id);
            await new Promise((res) => setTimeout(res, 15)); // a chatty user, not a flood: the replay below stays small
            break;
          }
          assert.ok(c.frames.slice(from).some((f) => f.t === 'error' && f.id === id), `a typed error for ${id}, not silence`);
          await new Promise((res) => setTimeout(res, 100)); // client backoff before a resend
        }
      }
    });
    await waitFor(() => acked.size >= 20, { what: 'load running', timeoutMs: 15_000 });
    // the reader leaves before the failover, remembering where it was
    const seen = reader.c.msgs(room).at(-1)!;
    reader.c.close();
    const nc = await connect({ servers: cluster.urls });
    let leader: string | undefined;
    try {
      const jsm = await jetstreamManager(nc);
      leader = (await jsm.streams.info(stream(room))).cluster?.leader;
    } finally {
      await nc.close();
    }
    const victim = cluster.servers.find((s) => s.name === leader);
    assert.ok(victim, `the leader of ${stream(room)} (${leader}) is one of the servers`);
    await victim.stop('SIGKILL');
    const atKill = acked.size;
    await waitFor(() => acked.size >= atKill + 20, { what: "progress with the shard's leader dead", timeoutMs: 30_000 });
    // a room of another shard is written meanwhile too
    a.c.send({ t: 'pub', id: 'bystander', room: other, text: 'x' });
    await a.c.next('ack', (x) => x.id === 'bystander', 15_000);
    await victim.start();
    for (const s of cluster.servers) await waitHealthy(s);
    const atRestart = acked.size;
    await waitFor(() => acked.size >= atRestart + 10, { what: 'progress after the old leader is back', timeoutMs: 20_000 });
    stop = true;
    await Promise.all(writers);
    const members = [a, b];
    await waitFor(() => members.every(({ c }) => [...acked].every((id) => c.msgs(room).some((m) => m.id === id))), { what: 'every acknowledged message at every member', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs(room).map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0], 'one order at both members');
    const msgs = a.c.msgs(room);
    for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, 'no hole');
    assert.equal(new Set(msgs.map((m) => m.id)).size, msgs.length, 'no duplicate delivered');
    for (let w = 0; w < 2; w++) {
      const mine = msgs.filter((m) => m.id.startsWith(`w${w}-`)).map((m) => Number(m.id.slice(3)));
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `writer ${w} keeps its order`);
    }
    // the reader comes back on the other gateway, after the failover: exactly what it missed, in order
    const r2 = await RawClient.connect(gws[0]!.wsUrl, reader.s.token);
    clients.push(r2);
    const back = await joinRoom(r2, room, { epoch: j.epoch, offset: seen.offset });
    assert.equal(back.recovered, true, `resume from ${seen.offset}: ${JSON.stringify(back)}`);
    assert.equal(back.gap, undefined);
    const missed = msgs.filter((m) => m.offset > seen.offset).map((m) => m.id);
    await waitFor(() => r2.msgs(room).length >= missed.length, { what: 'the replay', timeoutMs: 10_000 });
    assert.deepEqual(r2.msgs(room).map((m) => m.id), missed);
  });
});
